/**
 * Migration of codes of the old derivation (docs/DESIGN.md §4.2, PROTOCOL §3.1 "Migration"), with
 * real members in one process: a resident registered at A before blind derivation (A's code and
 * the gateway's row made from the My Number itself) and at B after it (blind) cannot be asked
 * about until A's registration worker, on its own, rekeys A's code; then B's query routes and A
 * answers, with A's code unchanged.
 */
import { expect } from 'chai';
import { signPayload } from '../../shared/crypto.ts';
import { ISSUER_ID, Typ } from '../../shared/federation/protocol.ts';
import { attestationLink, deriveCode, deriveLinkId } from '../../services/issuer/service.ts';
import { ask, moveResident, startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation, type MovedResident } from '../fixtures/inprocess-federation.ts';

const A = TAWARAMOTO;
const B = TODA;

describe('migration: a code of the old derivation is rekeyed by its municipality\'s outbox, and queries route again', function () {
  this.timeout(120_000);
  let fed: InProcessFederation;
  let moved: MovedResident;

  before(async () => {
    fed = await startInProcessFederation({ municipalities: [A, B] });
    moved = await moveResident(fed, A, B);
  });
  after(async () => fed?.close());

  it('when A\'s code was made by the old derivation and B\'s by the new, then B\'s query routes once A\'s worker has rekeyed it, and every code is kept', async () => {
    const { config } = fed.issuer;
    const Correspondence = fed.gateway.gateway.ctx.models.Correspondence;
    const Resident = fed.member(A).ctx.models.Resident;
    const atA = (await Resident.findOne({ where: { addresseeNumber: moved.fromAddressee }, raw: true }))!;
    const atB = (await fed.member(B).ctx.models.Resident.findOne({ where: { addresseeNumber: moved.toAddressee }, raw: true }))!;
    // Control: both registered blind, B's query routes.
    expect((await ask(fed.member(B), await fed.clerk(B), moved.toAddressee, A)).status).to.equal('ok');

    // The state before the upgrade at A: its code and the gateway's row from HMAC(LINK_KEY, My Number), attested under that link.
    const legacyLink = deriveLinkId(config.LINK_KEY, moved.myNumber);
    const legacyCode = deriveCode(config.CODE_KEY, A, legacyLink);
    const attestation = await signPayload(
      { iss: ISSUER_ID, municipality: A, code: legacyCode, link: attestationLink(config.ATTESTATION_KEY, legacyLink) },
      { ...fed.pki.credentials(ISSUER_ID).signer, typ: Typ.ATTESTATION });
    await Correspondence.update({ linkId: legacyLink, code: legacyCode, attestation }, { where: { municipality: A, code: atA.code! } });
    const before = await Correspondence.findAll({ where: { code: [legacyCode, atB.code!] }, raw: true });
    expect(new Set(before.map((r) => r.linkId)).size, 'A and B are on two links: nothing routes between them').to.equal(2);
    const unrouted = await ask(fed.member(B), await fed.clerk(B), moved.toAddressee, A);
    expect(unrouted.status).not.to.equal('ok');
    // A's own row as migration 0009 leaves it; from here A's registration worker takes over by itself.
    await Resident.update({ code: legacyCode, codeDerivation: 'legacy' }, { where: { id: atA.id } });

    let derivation: string | null | undefined;
    for (let i = 0; i < 100 && derivation !== 'blind'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      derivation = (await Resident.findOne({ where: { id: atA.id }, raw: true }))!.codeDerivation;
    }
    expect(derivation, 'A\'s worker rekeyed the code').to.equal('blind');

    const after = await Correspondence.findAll({ where: { code: [legacyCode, atB.code!] }, raw: true });
    expect(after.map((r) => r.code).sort()).to.deep.equal([legacyCode, atB.code!].sort());
    expect(new Set(after.map((r) => r.linkId)).size, 'one link').to.equal(1);
    expect((await Resident.findOne({ where: { id: atA.id }, raw: true }))!.code).to.equal(legacyCode);
    const routed = await ask(fed.member(B), await fed.clerk(B), moved.toAddressee, A);
    expect(routed.status, JSON.stringify(routed)).to.equal('ok');
  });
});
