export { accessFilterSchema, type AccessFilter } from '../../../shared/access-log/query.ts';
export { reconcileSchema, requestIdParamSchema, seqParamSchema } from '../../../shared/access-log/console.ts';
