/**
 * The move-in capability (docs/DESIGN.md §4.6) on a real federation in one process: a query is allowed only
 * where the resident came from (or earlier on their chain of certified moves), only within the
 * window after the move-in. Toda asks; Toda refuses first, and where a test makes Toda ask anyway
 * (its real key, signing what its service would not), the source refuses on its own. Akiota keeps
 * a window of 0 days, Tawaramoto and Toda the default 90.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { peekJwt, signPayload } from '../../shared/crypto.ts';
import { signMessage } from '../../shared/federation/messages.ts';
import { MOVE_OUT_CERTIFICATE_SECONDS, Typ, type MoveLinkClaims, type MoveOutClaims } from '../../shared/federation/protocol.ts';
import { api } from '../fixtures/http.ts';
import { randomMyNumber } from '../fixtures/factories.ts';
import {
  AKIOTA, TAWARAMOTO, TODA, answersLogged, ask, consent, craftAndSend, moveIn, moveOut, registerCodes, residentWithRecords,
  startInProcessFederation, type InProcessFederation,
} from '../fixtures/inprocess-federation.ts';

const DAY = 86_400_000;

describe('move-in capability: only where the resident came from, only within the window', function () {
  this.timeout(120_000);
  let fed: InProcessFederation;
  const token: Record<string, string> = {};

  before(async () => {
    fed = await startInProcessFederation({ municipalities: [TAWARAMOTO, AKIOTA, TODA], env: { [AKIOTA]: { MOVE_IN_QUERY_WINDOW_DAYS: '0' } } });
    for (const code of [TAWARAMOTO, AKIOTA, TODA]) token[code] = await fed.clerk(code);
  });
  after(async () => fed?.close());

  /** A person with records at `from`, moved by certificate along `path` (e.g. [T, D]); addressee numbers per municipality. */
  async function moveAlong(path: string[], kana: string) {
    const myNumber = randomMyNumber();
    const at: Record<string, string> = {};
    at[path[0]!] = (await residentWithRecords(fed.m(path[0]!), token[path[0]!]!, { kana, myNumber })).addresseeNumber;
    for (let i = 1; i < path.length; i++) {
      const certificate = await moveOut(fed.m(path[i - 1]!), token[path[i - 1]!]!, at[path[i - 1]!]!, path[i]!);
      at[path[i]!] = await moveIn(fed.m(path[i]!), token[path[i]!]!, certificate, myNumber, 'next-dose-scheduling');
    }
    for (const code of path) await registerCodes(fed.m(code));
    return { myNumber, at };
  }

  const sendLogged = async (requestId: string) =>
    fed.m(TODA).ctx.models.AccessLog.findAll({ where: { requestId, action: 'exchange.query.send' }, raw: true });

  it('when a resident moved in from Tawaramoto and Toda asks Tawaramoto within the window, then the records are released', async () => {
    const { at } = await moveAlong([TAWARAMOTO, TODA], 'チョクセツ イチロウ');
    const out = await ask(fed.m(TODA), token[TODA]!, at[TODA]!, TAWARAMOTO);
    expect(out).to.include({ status: 'ok', recordCount: 2, imported: 2 });
    const logged = await answersLogged(fed.m(TAWARAMOTO), out.requestId);
    expect(logged.map((r) => r.outcome)).to.deep.equal(['allowed']);
  });

  it('when Toda asks a municipality the resident did not come from, then Toda refuses before signing and logs it; asked anyway, that municipality refuses on its own', async () => {
    const { myNumber, at } = await moveAlong([TAWARAMOTO, TODA], 'ムカンケイ ジロウ');
    // Akiota holds the same person (registered there by hand, never moved to Toda from there).
    const held = await api('POST', `${fed.m(AKIOTA).url}/residents`, { token: token[AKIOTA], body: {
      name: '無関係 次郎', kana: 'ムカンケイ ジロウ', birthDate: '1985-07-14', sex: 'female', address: '広島県安芸太田町1-1', myNumber,
    } });
    expect(held.status).to.equal(201);
    await registerCodes(fed.m(AKIOTA));
    await consent(fed.m(TODA), token[TODA]!, at[TODA]!, [AKIOTA]);

    const out = await ask(fed.m(TODA), token[TODA]!, at[TODA]!, AKIOTA);
    expect(out).to.include({ status: 'denied', reason: 'source_not_on_move_chain', imported: 0 });
    expect((await sendLogged(out.requestId)).map((r) => `${r.outcome}:${r.reason}`)).to.deep.equal(['denied:source_not_on_move_chain']);
    expect(await answersLogged(fed.m(AKIOTA), out.requestId), 'nothing left Toda').to.have.length(0);

    const forced = await craftAndSend(fed, TODA, { addresseeNumber: at[TODA]!, source: AKIOTA, sealed: { moveIn: { movedInAt: new Date().toISOString() } } });
    expect(forced.source).to.include({ status: 'denied', reason: 'not_moved_to_requester' });
    const atAkiota = await answersLogged(fed.m(AKIOTA), forced.rid);
    expect(atAkiota.map((r) => `${r.outcome}:${r.reason}`)).to.deep.equal(['denied:not_moved_to_requester']);
    expect(JSON.parse(atAkiota[0]!.recordIds)).to.deep.equal([]);
  });

  it('when the move-in at Toda lies further back than Toda\'s window, then Toda refuses before signing and logs it', async () => {
    const { input } = await residentWithRecords(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, { kana: 'フルイ サブロウ' });
    // Registered at the counter a hundred days ago, coming from Tawaramoto.
    const registered = await api('POST', `${fed.m(TODA).url}/residents`, { token: token[TODA], body: {
      ...input, address: '埼玉県戸田市1-1', previousMunicipality: TAWARAMOTO, movedInAt: new Date(Date.now() - 100 * DAY).toISOString(),
    } });
    expect(registered.status).to.equal(201);
    await registerCodes(fed.m(TODA));
    await consent(fed.m(TODA), token[TODA]!, registered.body.addresseeNumber, [TAWARAMOTO]);

    const out = await ask(fed.m(TODA), token[TODA]!, registered.body.addresseeNumber, TAWARAMOTO);
    expect(out).to.include({ status: 'denied', reason: 'move_in_window_passed', imported: 0 });
    expect((await sendLogged(out.requestId)).map((r) => `${r.outcome}:${r.reason}`)).to.deep.equal(['denied:move_in_window_passed']);
    expect(await answersLogged(fed.m(TAWARAMOTO), out.requestId)).to.have.length(0);
  });

  it('when the source\'s own window has passed (Akiota keeps 0 days), then Akiota refuses on its own although Toda would allow it, and logs it', async () => {
    const { at } = await moveAlong([AKIOTA, TODA], 'マドグチ シロウ');
    const out = await ask(fed.m(TODA), token[TODA]!, at[TODA]!, AKIOTA);
    expect(out).to.include({ status: 'denied', reason: 'move_in_window_passed', imported: 0 });
    expect((await sendLogged(out.requestId)).map((r) => r.outcome), 'Toda sent it').to.deep.equal(['allowed']);
    const atAkiota = await answersLogged(fed.m(AKIOTA), out.requestId);
    expect(atAkiota.map((r) => `${r.outcome}:${r.reason}`)).to.deep.equal(['denied:move_in_window_passed']);
  });

  it('when a resident moved Tawaramoto → Akiota → Toda with certificates, then Toda may ask Tawaramoto along the chain, and Tawaramoto checks every link itself', async () => {
    const { at } = await moveAlong([TAWARAMOTO, AKIOTA, TODA], 'ニダン ゴロウ');
    await consent(fed.m(TODA), token[TODA]!, at[TODA]!, [TAWARAMOTO]);
    const stored = (await fed.m(TODA).ctx.models.MoveIn.findOne({ where: { fromMunicipality: AKIOTA }, order: [['createdAt', 'DESC']], raw: true }))!;
    const link = peekJwt(stored.moveLink!).claims as unknown as MoveLinkClaims;
    expect(link).to.include({ iss: AKIOTA, aud: TODA });
    expect(peekJwt(link.previous!).claims).to.include({ iss: TAWARAMOTO, aud: AKIOTA });
    expect(JSON.stringify(link), 'a link carries no address').not.to.match(/転入先|previousAddress|destinationAddress/);

    const out = await ask(fed.m(TODA), token[TODA]!, at[TODA]!, TAWARAMOTO);
    expect(out).to.include({ status: 'ok', recordCount: 2, imported: 2 });
    expect((await answersLogged(fed.m(TAWARAMOTO), out.requestId)).map((r) => r.outcome)).to.deep.equal(['allowed']);
  });

  it('when the earlier move was registered by hand (no certificate, so no link), then Toda refuses to ask Tawaramoto, and Tawaramoto refuses the chain Toda holds', async () => {
    const myNumber = randomMyNumber();
    const { input, addresseeNumber } = await residentWithRecords(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, { kana: 'テガキ ロクロウ', myNumber });
    await moveOut(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, addresseeNumber, AKIOTA);
    const atAkiota = await api('POST', `${fed.m(AKIOTA).url}/residents`, { token: token[AKIOTA], body: {
      ...input, address: '広島県安芸太田町2-2', previousMunicipality: TAWARAMOTO, movedInAt: new Date().toISOString(),
    } });
    expect(atAkiota.status).to.equal(201);
    const certificate = await moveOut(fed.m(AKIOTA), token[AKIOTA]!, atAkiota.body.addresseeNumber, TODA);
    const atToda = await moveIn(fed.m(TODA), token[TODA]!, certificate, myNumber, 'next-dose-scheduling');
    for (const code of [TAWARAMOTO, AKIOTA, TODA]) await registerCodes(fed.m(code));
    await consent(fed.m(TODA), token[TODA]!, atToda, [TAWARAMOTO]);

    const out = await ask(fed.m(TODA), token[TODA]!, atToda, TAWARAMOTO);
    expect(out).to.include({ status: 'denied', reason: 'source_not_on_move_chain' });
    expect(await answersLogged(fed.m(TAWARAMOTO), out.requestId)).to.have.length(0);

    const link = (await fed.m(TODA).ctx.models.MoveIn.findOne({ where: { fromMunicipality: AKIOTA }, order: [['createdAt', 'DESC']], raw: true }))!.moveLink!;
    expect(peekJwt(link).claims).not.to.have.property('previous');
    const forced = await craftAndSend(fed, TODA, { addresseeNumber: atToda, source: TAWARAMOTO, sealed: { moveIn: { movedInAt: new Date().toISOString(), link } } });
    expect(forced.source).to.include({ status: 'denied', reason: 'source_not_on_move_chain' });
    expect((await answersLogged(fed.m(TAWARAMOTO), forced.rid)).map((r) => `${r.outcome}:${r.reason}`)).to.deep.equal(['denied:source_not_on_move_chain']);
  });

  it('when a link in the chain is forged (Akiota re-signs Tawaramoto\'s link), then Toda refuses the chain, and so does Tawaramoto on its own', async () => {
    const myNumber = randomMyNumber();
    const { addresseeNumber } = await residentWithRecords(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, { kana: 'ギゾウ ナナコ', myNumber });
    const toAkiota = await moveOut(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, addresseeNumber, AKIOTA);
    const atAkiota = await moveIn(fed.m(AKIOTA), token[AKIOTA]!, toAkiota, myNumber);
    // Akiota, with its real key, certifies the move to Toda but nests a Tawaramoto link it signed itself.
    const akiota = fed.pki.credentials(AKIOTA).signer;
    const genuine = peekJwt(peekJwt(toAkiota).claims.moveLink as string).claims as unknown as MoveLinkClaims;
    const forgedPrevious = await signPayload(genuine, { key: akiota.key, kid: akiota.kid, typ: Typ.MOVE_LINK });
    const resident = (await fed.m(AKIOTA).ctx.models.Resident.findOne({ where: { addresseeNumber: atAkiota }, raw: true }))!;
    const jti = randomUUID();
    const moveOutDate = new Date().toISOString().slice(0, 10);
    const who = { kana: resident.kana, birthDate: resident.birthDate, sex: resident.sex as MoveOutClaims['resident']['sex'] };
    const link = await signPayload({ iss: AKIOTA, aud: TODA, jti, iat: Math.floor(Date.now() / 1000), moveOutDate, resident: who, previous: forgedPrevious },
      { key: akiota.key, kid: akiota.kid, typ: Typ.MOVE_LINK });
    const certificate = await signMessage({
      aud: TODA, jti, resident: { name: resident.name, ...who, previousAddress: resident.address }, moveOutDate, destinationAddress: '転入先 1-1', moveLink: link,
    }, akiota, Typ.MOVE_OUT, MOVE_OUT_CERTIFICATE_SECONDS);
    const atToda = await moveIn(fed.m(TODA), token[TODA]!, certificate, myNumber);
    for (const code of [TAWARAMOTO, AKIOTA, TODA]) await registerCodes(fed.m(code));
    await consent(fed.m(TODA), token[TODA]!, atToda, [TAWARAMOTO]);

    const out = await ask(fed.m(TODA), token[TODA]!, atToda, TAWARAMOTO);
    expect(out).to.include({ status: 'denied', reason: 'move_chain_invalid:signature' });
    expect(await answersLogged(fed.m(TAWARAMOTO), out.requestId)).to.have.length(0);

    const forced = await craftAndSend(fed, TODA, { addresseeNumber: atToda, source: TAWARAMOTO, sealed: { moveIn: { movedInAt: new Date().toISOString(), link } } });
    expect(forced.source).to.include({ status: 'denied', reason: 'move_chain_invalid:signature' });
    expect((await answersLogged(fed.m(TAWARAMOTO), forced.rid)).map((r) => `${r.outcome}:${r.reason}`)).to.deep.equal(['denied:move_chain_invalid:signature']);
  });

  it('when a certificate\'s move link is not its issuer\'s own for that move, then the move-in is refused and logged', async () => {
    const myNumber = randomMyNumber();
    const { addresseeNumber } = await residentWithRecords(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, { kana: 'スリカエ ハチロウ', myNumber });
    const genuine = await moveOut(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, addresseeNumber, TODA);
    const claims = peekJwt(genuine).claims as unknown as MoveOutClaims;
    const tawaramoto = fed.pki.credentials(TAWARAMOTO).signer;
    // Signed by the issuer, but the link belongs to another move (another jti).
    const otherLink = await signPayload({ ...(peekJwt(claims.moveLink!).claims as object), jti: randomUUID() }, { key: tawaramoto.key, kid: tawaramoto.kid, typ: Typ.MOVE_LINK });
    const { iss: _iss, iat: _iat, exp: _exp, ...rest } = claims;
    const swapped = await signMessage({ ...rest, jti: randomUUID(), moveLink: otherLink }, tawaramoto, Typ.MOVE_OUT, MOVE_OUT_CERTIFICATE_SECONDS);
    const before = await fed.m(TODA).ctx.models.Resident.count();
    const res = await api('POST', `${fed.m(TODA).url}/move-ins`, { token: token[TODA], body: { certificate: swapped, myNumber, address: '転入先 1-1' } });
    expect(res.status).to.equal(422);
    expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
    expect(res.body).to.include({ field: 'certificate', rule: 'moveLink must be signed by the issuer for this move and person' });
    expect(await fed.m(TODA).ctx.models.Resident.count()).to.equal(before);
    const denied = await fed.m(TODA).ctx.models.AccessLog.findAll({ where: { action: 'resident.move_in', outcome: 'denied' }, raw: true });
    expect(denied.map((r) => r.reason)).to.include('move-out-certificate-refused');
  });
});
