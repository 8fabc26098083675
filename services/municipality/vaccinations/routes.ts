import { Router } from 'express';
import type { MunicipalityContext } from '../context.ts';

export function vaccinationRoutes(_ctx: MunicipalityContext): Router {
  return Router();
}
