import { Controller, Get, Inject } from '@nestjs/common';
import { ApiExcludeController, type OpenAPIObject } from '@nestjs/swagger';

/** Where createApp puts the document once the app (whose routes it describes) is initialised. */
export const OPENAPI_DOCUMENT = Symbol('OPENAPI_DOCUMENT');
export interface OpenApiDocumentHolder {
  document?: OpenAPIObject;
}

/** `GET /api/v1/openapi.json`: behind the token like every endpoint but health (the contract). */
@ApiExcludeController()
@Controller()
export class OpenApiController {
  constructor(@Inject(OPENAPI_DOCUMENT) private readonly holder: OpenApiDocumentHolder) {}

  @Get('openapi.json')
  document(): OpenAPIObject | undefined {
    return this.holder.document;
  }
}
