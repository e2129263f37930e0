import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { API_CONTROLLERS } from '../app.module';
import { commandCallOf } from '../http/command-call.decorator';

/**
 * `Idempotency-Key` is honoured by every route that takes the command call (`@CommandCallParam()`,
 * which the controllers' `run` passes to `IdempotentCommands`), so a new POST must not forget it.
 */
describe('idempotent routes', () => {
  const routes = API_CONTROLLERS.flatMap((controller) =>
    Object.getOwnPropertyNames(controller.prototype)
      .filter((name) => name !== 'constructor')
      .map((name) => {
        const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, name) ?? {}) as Record<
          string,
          { factory?: unknown }
        >;
        return {
          route: `${controller.name}.${name}`,
          handler: (controller.prototype as unknown as Record<string, object>)[name],
          takesCommandCall: Object.values(args).some((arg) => arg.factory === commandCallOf),
        };
      })
      .filter(({ handler }) => Reflect.getMetadata(PATH_METADATA, handler) !== undefined),
  );

  it('every POST endpoint takes the command call, so a repeated Idempotency-Key is answered from the store', () => {
    const posts = routes.filter(
      ({ handler }) => Reflect.getMetadata(METHOD_METADATA, handler) === RequestMethod.POST,
    );
    expect(posts.length).toBeGreaterThanOrEqual(17);
    expect(posts.filter(({ takesCommandCall }) => !takesCommandCall).map(({ route }) => route)).toEqual([]);
  });

  it('reads do not take it', () => {
    const gets = routes.filter(
      ({ handler }) => Reflect.getMetadata(METHOD_METADATA, handler) === RequestMethod.GET,
    );
    expect(gets.length).toBeGreaterThan(5);
    expect(gets.filter(({ takesCommandCall }) => takesCommandCall).map(({ route }) => route)).toEqual([]);
  });
});
