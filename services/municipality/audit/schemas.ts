export { accessFilterSchema, type AccessFilter } from '../../../shared/audit-query.ts';
export { reconcileSchema, requestIdParamSchema, seqParamSchema } from '../../../shared/audit-console.ts';
