import { z } from 'zod';
import { ROLES } from './roles.ts';

export const loginSchema = z.object({
  username: z.string().min(1, 'is required').max(64, 'must be at most 64 characters'),
  password: z.string().min(1, 'is required').max(200, 'must be at most 200 characters'),
}).strict();

export const createStaffSchema = z.object({
  username: z.string().regex(/^[a-z0-9._-]{3,64}$/, 'must be 3–64 lowercase letters, digits, dot, underscore or hyphen'),
  displayName: z.string().min(1, 'is required').max(100, 'must be at most 100 characters'),
  role: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }),
  password: z.string().min(12, 'must be at least 12 characters').max(200, 'must be at most 200 characters'),
}).strict();

export type CreateStaffInput = z.infer<typeof createStaffSchema>;
