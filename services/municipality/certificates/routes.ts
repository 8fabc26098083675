import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { todayInJapan } from '../../../shared/platform/dates.ts';
import { AppError, badRequest } from '../../../shared/platform/errors.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import type { MunicipalityContext } from '../context.ts';
import { addresseeNumberSchema } from '../residents/schemas.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { Accessor } from '../access-log/service.ts';
import { issueCertificate, publishedKeys, requireSigningKey, type CertificateForm } from './service.ts';
import { HEALTH_CARD_MEDIA_TYPE, healthCardFile, qrPng } from './shc.ts';

/** Where SMART Health Cards verifiers look for an issuer's keys: `<iss>/.well-known/jwks.json` (spec, "Determining keys associated with an issuer"). */
export const JWKS_PATH = '/.well-known/jwks.json';

const addresseeParam = z.object({ addresseeNumber: addresseeNumberSchema });

/**
 * The card's `iss`: SHC_ISSUER_URL when set (the public URL verifiers reach), otherwise the origin
 * this request reached — the staff port serves the JWKS itself, so the two agree.
 */
function issuerOf(ctx: MunicipalityContext, req: Request): string {
  if (ctx.config.SHC_ISSUER_URL) return ctx.config.SHC_ISSUER_URL;
  const host = req.get('host');
  try {
    if (!host) throw new Error('no host');
    return new URL(`${req.protocol}://${host}`).origin;
  } catch {
    throw badRequest('host', 'must name this server (host and port): the certificate\'s issuer URL is made from it');
  }
}

const attachment = (ctx: MunicipalityContext, extension: string) =>
  `vaccination-certificate-${ctx.config.MUNICIPALITY_CODE}-${todayInJapan()}.${extension}`;

/**
 * Issues the certificate to `who` (a clerk at the counter, or the resident at their own page) and
 * answers with it: the `.smart-health-card` file, or the QR code as a PNG.
 */
export async function sendCertificate(ctx: MunicipalityContext, req: Request, res: Response, who: Accessor, addresseeNumber: string, form: CertificateForm): Promise<void> {
  // Express answers HEAD with the GET handler: a HEAD must not issue (and log) a certificate nobody receives.
  if (req.method === 'HEAD') throw new AppError(405, 'method-not-allowed', 'A certificate is issued by GET only', { field: 'method', rule: 'must be GET' });
  requireSigningKey(ctx);
  const { jws } = await issueCertificate(ctx, who, addresseeNumber, { issuer: issuerOf(ctx, req), form });
  if (form === 'file') {
    res.status(200).type(HEALTH_CARD_MEDIA_TYPE)
      .set('Content-Disposition', `attachment; filename="${attachment(ctx, 'smart-health-card')}"`)
      .send(JSON.stringify(healthCardFile(jws)));
    return;
  }
  res.status(200).type('image/png')
    .set('Content-Disposition', `inline; filename="${attachment(ctx, 'png')}"`)
    .send(await qrPng(jws));
}

/** The vaccination certificate (接種証明書) as a SMART Health Card, and the key that verifies it (docs/DESIGN.md §4.11). */
export function certificateRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
  // Records are a clerk's to read (DESIGN.md §6.4): the certificate is issued at the counter, like the disclosure report.
  const certificateGuard = [authenticate(ctx), requireRole('clerk')];

  // Public, like /health: a verifier anywhere fetches it; it holds one public key and names no person.
  router.get(JWKS_PATH, (_req, res) => {
    const keys = publishedKeys(ctx);
    res.set({ 'Cache-Control': 'public, max-age=3600', 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' }).json(keys);
  });

  router.post('/residents/:addresseeNumber/vaccination-certificate', ...certificateGuard, async (req, res) => {
    const { addresseeNumber } = parseInput(addresseeParam, req.params, 'addresseeNumber');
    await sendCertificate(ctx, req, res, actorOf(req), addresseeNumber, 'file');
  });

  router.get('/residents/:addresseeNumber/vaccination-certificate.png', ...certificateGuard, async (req, res) => {
    const { addresseeNumber } = parseInput(addresseeParam, req.params, 'addresseeNumber');
    await sendCertificate(ctx, req, res, actorOf(req), addresseeNumber, 'qr');
  });

  return router;
}
