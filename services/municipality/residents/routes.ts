import { Router } from 'express';
import type { MunicipalityContext } from '../context.ts';

export function residentRoutes(_ctx: MunicipalityContext): Router {
  return Router();
}
