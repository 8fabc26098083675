/**
 * The exception path (DESIGN.md flow 6): a query without consent because life or body is at
 * stake. One staff member asks with a written justification; a different one approves; the
 * approval is spent by exactly one query, and every hop flags it.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { AppError, notFound } from '../../../shared/platform/errors.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentWhere } from '../residents/model.ts';
import type { ExceptionRequestInput } from './schemas.ts';
import { changeExceptionStatus, findException, insertException, listExceptionRows } from './model.ts';

export async function requestException(ctx: MunicipalityContext, t: Transaction, resident: { id: string; addresseeNumber: string }, input: ExceptionRequestInput, actor: Actor) {
  const row = await insertException(ctx.models.ExceptionRequest, {
    id: randomUUID(), residentId: resident.id, source: input.source, purpose: input.purpose,
    justification: input.justification, requestedBy: actor.staffId,
  }, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.EXCEPTION_REQUEST, subject: resident.addresseeNumber, purpose: input.purpose, legalBasis: 'life-protection',
    outcome: 'allowed', flags: ['life-protection'], details: { source: input.source, exceptionId: row.id },
  });
  return toView(row);
}

export async function approveException(ctx: MunicipalityContext, t: Transaction, id: string, actor: Actor) {
  const row = await findException(ctx.models.ExceptionRequest, id, t);
  if (!row) throw notFound('Exception request');
  if (row.status !== 'pending') throw new AppError(409, 'exception-not-pending', `Exception request is ${row.status}`, { field: 'id', rule: 'must be pending' });
  if (row.requestedBy === actor.staffId) {
    throw new AppError(403, 'second-approver-required', 'A second staff member must approve', { field: 'approver', rule: 'must differ from the requester' });
  }
  const approvedAt = new Date().toISOString();
  await changeExceptionStatus(ctx.models.ExceptionRequest, id, 'pending', { status: 'approved', approvedBy: actor.staffId, approvedAt }, t);
  const resident = await findResidentWhere(ctx.models.Resident, { id: row.residentId }, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.EXCEPTION_APPROVE, subject: resident?.addresseeNumber ?? null, purpose: row.purpose, legalBasis: 'life-protection',
    outcome: 'allowed', flags: ['life-protection'], details: { source: row.source, exceptionId: id, requestedBy: row.requestedBy },
  });
  return toView({ ...row, status: 'approved', approvedBy: actor.staffId, approvedAt });
}

export async function listExceptions(ctx: MunicipalityContext, status?: string) {
  const rows = await listExceptionRows(ctx.models.ExceptionRequest, status);
  return rows.map(toView);
}

function toView(row: { id: string; residentId: string; source: string; purpose: string; justification: string; requestedBy: string; approvedBy?: string | null; approvedAt?: string | null; status?: string }) {
  return {
    id: row.id, residentId: row.residentId, source: row.source, purpose: row.purpose, justification: row.justification,
    requestedBy: row.requestedBy, approvedBy: row.approvedBy ?? null, approvedAt: row.approvedAt ?? null, status: row.status ?? 'pending',
  };
}
