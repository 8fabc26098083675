import { z } from 'zod';
import { withoutMyNumber } from '../../../shared/platform/validation.ts';
import { badRequest } from '../../../shared/platform/errors.ts';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/**
 * An Idempotency-Key value: 8–128 of letters, digits and . _ : -, never a My Number. A UUID (what
 * most clients send) is taken whole, as everywhere (shared/identifiers.ts#findMyNumberSpans); the
 * rest of the key is still checked.
 */
export const idempotencyKeySchema = z.string().regex(/^[A-Za-z0-9_.:-]{8,128}$/).superRefine(withoutMyNumber);

/**
 * Reads the Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header). Record writes
 * require it, so a retry after a lost response can never create a second record.
 * @throws 400 naming the header when it is required and missing, or malformed.
 */
export function parseIdempotencyKey(value: string | undefined, required: boolean): string | undefined {
  if (value === undefined || value === '') {
    if (required) throw badRequest(IDEMPOTENCY_HEADER, 'header is required on this write (a unique value per intended write)');
    return undefined;
  }
  if (!idempotencyKeySchema.safeParse(value).success) {
    throw badRequest(IDEMPOTENCY_HEADER, 'must be 8 to 128 characters: letters, digits, dot, underscore, colon or hyphen, and must not contain a My Number');
  }
  return value;
}
