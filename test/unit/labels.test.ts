/**
 * What a person reads of the access log: every action any member logs has a Japanese label, and
 * times are shown in Japan Standard Time (shared/access-log/labels.ts).
 */
import { expect } from 'chai';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { GatewayActions } from '../../gateway/access-log/actions.ts';
import { IssuerActions } from '../../services/issuer/actions.ts';
import { ALERT_KINDS } from '../../shared/access-log/alerts.ts';
import { ACTION_LABELS, ALERT_LABELS, formatJst, labelOf, PURPOSE_LABELS } from '../../shared/access-log/labels.ts';
import { PURPOSES } from '../../shared/federation/protocol.ts';

describe('the access log in Japanese', () => {
  it('when any member logs an action, then the consoles and the disclosure report have a Japanese label for it', () => {
    const actions = [...Object.values(Actions), ...Object.values(GatewayActions), ...Object.values(IssuerActions)];
    const missing = actions.filter((a) => !ACTION_LABELS[a]);
    expect(missing).to.deep.equal([]);
    for (const a of actions) expect(ACTION_LABELS[a], a).to.match(/[\u3040-\u30ff\u4e00-\u9fff]/);
    expect(ALERT_KINDS.filter((k) => !ALERT_LABELS[k])).to.deep.equal([]);
    expect(PURPOSES.filter((p) => !PURPOSE_LABELS[p])).to.deep.equal([]);
  });

  it('when a time is shown, then it is the instant plus nine hours marked JST, across the date line; a code without a label is shown as it is', () => {
    expect(formatJst('2026-12-06T23:35:56.123Z')).to.equal('2026-12-07 08:35:56 JST');
    expect(formatJst('2026-06-30T15:00:00Z')).to.equal('2026-07-01 00:00:00 JST');
    expect(labelOf(ACTION_LABELS, 'resident.read')).to.equal('住民情報の閲覧');
    expect(labelOf(ACTION_LABELS, 'unknown.thing')).to.equal('unknown.thing');
    expect(labelOf(ACTION_LABELS, null)).to.equal('—');
  });
});
