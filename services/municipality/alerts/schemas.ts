import { z } from 'zod';
import { alertConfigShape } from '../../../shared/access-log/alerts.ts';

/**
 * Thresholds of a municipality's detectors (spread into the municipality's config schema): the
 * shared ones, plus the staff-volume rule — a staff member is flagged when they sent at least
 * ALERT_STAFF_QUERY_MIN query subjects in the window AND at least ALERT_STAFF_QUERY_FACTOR times
 * the median of their peers (the other clerks and operators, counting those who sent none).
 */
export const municipalityAlertConfigShape = {
  ...alertConfigShape,
  ALERT_STAFF_QUERY_MIN: z.coerce.number().int().min(1).max(1_000_000).default(20),
  ALERT_STAFF_QUERY_FACTOR: z.coerce.number().min(1).max(1000).default(3),
};
