import { tokenFrom } from '../../../shared/staff/auth.ts';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { inTransaction } from '../../../shared/platform/db.ts';
import { unauthorized } from '../../../shared/platform/errors.ts';
import { rateLimit } from '../../../shared/platform/rate-limit.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import type { ResidentActor } from '../access-log/service.ts';
import { sendCertificate } from '../certificates/routes.ts';
import { revokeConsent } from '../consents/service.ts';
import type { MunicipalityContext } from '../context.ts';
import { disclosureReport } from '../disclosure/report.ts';
import { gatherGatewayTrail, gatherTrail } from '../trail/service.ts';
import { requireLink, type FederationLink } from '../federation/link.ts';
import { addresseeNumberSchema } from '../residents/schemas.ts';
import { findResidentById } from '../residents/service.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import {
  checkResidentSession, enrolCertificate, type ResidentSessionContext, listCredentials, newChallenge, ownData, RESIDENT_SESSION_COOKIE, signInResident, signOutResident, withdrawCredential,
} from './service.ts';
import { enrolSchema, residentRevokeSchema, signInSchema } from './schemas.ts';

/** The page's static files (no build step): Japanese, phone-sized, script and styles same-origin (CSP 'self'). */
const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));
const credentialParams = z.object({ addresseeNumber: addresseeNumberSchema, credentialId: z.uuid('must be a UUID') });
const consentParam = z.object({ consentId: z.uuid('must be a UUID') });
const addresseeParam = z.object({ addresseeNumber: addresseeNumberSchema });

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The resident signed in at their own page; set by the resident session check. */
      resident?: ResidentSessionContext;
    }
  }
}

const residentSession = (ctx: MunicipalityContext): RequestHandler => async (req, _res, next) => {
  const token = tokenFrom(req.get('authorization'), req.get('cookie'), RESIDENT_SESSION_COOKIE);
  if (!token) throw unauthorized('Sign in at the resident page first');
  req.resident = await checkResidentSession(ctx, token);
  next();
};

const residentOf = (req: Request): ResidentActor => {
  if (!req.resident) throw unauthorized();
  return req.resident.who;
};

/**
 * The resident's own page (docs/DESIGN.md §4.14): the counter's enrolment routes (clerks), and the
 * resident's routes under /resident, which take no identifier of a resident — a resident's session
 * names its resident, so there is nobody else's data to ask for.
 */
export function residentPageRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined, municipalityNames: () => Promise<Record<string, string>>): Router {
  const router = Router();
  const clerk = [authenticate(ctx), requireRole('clerk')];

  router.post('/residents/:addresseeNumber/resident-credentials', ...clerk, async (req, res) => {
    const { addresseeNumber } = parseInput(addresseeParam, req.params, 'addresseeNumber');
    const { certificate } = parseInput(enrolSchema, req.body);
    res.status(201).json(await enrolCertificate(ctx, requireLink(fed).trust, addresseeNumber, certificate, actorOf(req)));
  });
  router.get('/residents/:addresseeNumber/resident-credentials', ...clerk, async (req, res) => {
    const { addresseeNumber } = parseInput(addresseeParam, req.params, 'addresseeNumber');
    res.json({ credentials: await listCredentials(ctx, addresseeNumber, actorOf(req)) });
  });
  router.post('/residents/:addresseeNumber/resident-credentials/:credentialId/withdraw', ...clerk, async (req, res) => {
    const { addresseeNumber, credentialId } = parseInput(credentialParams, req.params, 'credentialId');
    res.json(await withdrawCredential(ctx, addresseeNumber, credentialId, actorOf(req)));
  });

  router.use('/resident', express.static(PAGE_DIR, { index: 'index.html', dotfiles: 'ignore', redirect: false }));

  // Challenges and sign-ins per address: a signature is cheap to check, not free.
  const signInLimit = rateLimit({
    limit: ctx.config.RESIDENT_SIGNIN_ADDRESS_LIMIT, windowSeconds: ctx.config.RESIDENT_SIGNIN_ADDRESS_WINDOW_SECONDS, keyOf: (req) => req.ip ?? req.socket.remoteAddress ?? 'unknown', scope: 'address', logger: ctx.logger,
  });
  router.post('/resident/sign-in/challenge', signInLimit, async (_req, res) => {
    res.status(201).json(await newChallenge(ctx));
  });
  router.post('/resident/sign-in', signInLimit, async (req, res) => {
    const input = parseInput(signInSchema, req.body);
    const session = await signInResident(ctx, requireLink(fed).trust, input);
    res.cookie(RESIDENT_SESSION_COOKIE, session.token, { httpOnly: true, sameSite: 'strict', path: '/resident', maxAge: session.expiresIn * 1000, secure: req.secure });
    res.json(session);
  });
  router.post('/resident/sign-out', residentSession(ctx), async (req, res) => {
    await signOutResident(ctx, req.resident!.who, req.resident!.session);
    res.clearCookie(RESIDENT_SESSION_COOKIE, { path: '/resident' });
    res.status(204).end();
  });

  router.get('/resident/me', residentSession(ctx), async (req, res) => {
    const session = req.resident!;
    const { trail: ask, ...own } = await ownData(ctx, session.who);
    const here = await disclosureReport(ctx, session.who, session.who.addresseeNumber);
    // The municipalities they lived in keep their own logs: asked through the gateway, on the resident's signature.
    const asker = { who: session.who, code: ask.code, certificate: session.certificate, signIn: session.signIn };
    // ... and the gateway its own, asked on our word alone (its answer names no code, no staff).
    const [elsewhere, gateway] = await Promise.all([
      fed && ask.sources.length > 0 ? gatherTrail(ctx, fed, asker, ask.sources) : [],
      fed ? gatherGatewayTrail(ctx, fed, asker) : null,
    ]);
    const names = await municipalityNames().catch(() => ({}));
    res.json({
      municipality: here.municipality, municipalityNames: names, ...own,
      trail: here.items, truncated: here.truncated, notices: here.notices,
      elsewhere: elsewhere.map((g) => ({ municipality: g.municipality, status: g.status, reason: g.reason, items: g.items, truncated: g.truncated })),
      gateway: gateway ? { status: gateway.status, reason: gateway.reason, items: gateway.items, truncated: gateway.truncated } : null,
    });
  });

  router.post('/resident/consents/:consentId/revoke', residentSession(ctx), async (req, res) => {
    const { consentId } = parseInput(consentParam, req.params, 'consentId');
    const { reason } = parseInput(residentRevokeSchema, req.body ?? {});
    const who = residentOf(req);
    const consent = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentById(ctx, who.residentId, t);
      // The session's own resident: a consent id of anyone else is "not found", as an unknown one.
      return revokeConsent(ctx, t, { id: who.residentId, addresseeNumber: resident!.addresseeNumber }, consentId, reason ?? 'revoked by the resident', who);
    });
    res.json({ id: consent.id, purpose: consent.purpose, sources: consent.sources, revokedAt: consent.revokedAt });
  });

  router.get('/resident/vaccination-certificate.png', residentSession(ctx), async (req, res) => {
    const who = residentOf(req);
    await sendCertificate(ctx, req, res, who, who.addresseeNumber, 'qr');
  });
  router.post('/resident/vaccination-certificate', residentSession(ctx), async (req, res) => {
    const who = residentOf(req);
    await sendCertificate(ctx, req, res, who, who.addresseeNumber, 'file');
  });

  return router;
}
