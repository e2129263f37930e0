import { RequestMethod } from '@nestjs/common';
import { INTERCEPTORS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { API_CONTROLLERS } from '../app.module';
import { IdempotencyInterceptor } from './idempotency.interceptor';

/** `Idempotency-Key` is honoured per route (`@Idempotent()`), so a new POST must not forget it. */
describe('idempotent routes', () => {
  const routes = API_CONTROLLERS.flatMap((controller) =>
    Object.getOwnPropertyNames(controller.prototype)
      .filter((name) => name !== 'constructor')
      .map((name) => ({
        route: `${controller.name}.${name}`,
        handler: (controller.prototype as unknown as Record<string, object>)[name],
      }))
      .filter(({ handler }) => Reflect.getMetadata(PATH_METADATA, handler) !== undefined),
  );
  const interceptorsOf = (handler: object) =>
    (Reflect.getMetadata(INTERCEPTORS_METADATA, handler) as unknown[] | undefined) ?? [];

  it('every POST endpoint answers a repeated Idempotency-Key from the store', () => {
    const posts = routes.filter(
      ({ handler }) => Reflect.getMetadata(METHOD_METADATA, handler) === RequestMethod.POST,
    );
    expect(posts.length).toBeGreaterThanOrEqual(17);
    expect(posts.filter(({ handler }) => !interceptorsOf(handler).includes(IdempotencyInterceptor))).toEqual(
      [],
    );
  });

  it('reads are not wrapped by it (an interceptor costs every request it wraps)', () => {
    const gets = routes.filter(
      ({ handler }) => Reflect.getMetadata(METHOD_METADATA, handler) === RequestMethod.GET,
    );
    expect(gets.length).toBeGreaterThan(5);
    expect(gets.filter(({ handler }) => interceptorsOf(handler).length > 0)).toEqual([]);
  });
});
