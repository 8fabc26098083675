import type { z } from 'zod';
import { staffAccountSchema } from '../../../shared/staff/auth.ts';
import { ROLES } from './roles.ts';

export { loginSchema } from '../../../shared/staff/auth.ts';

export const createStaffSchema = staffAccountSchema(ROLES);

export type CreateStaffInput = z.infer<typeof createStaffSchema>;
