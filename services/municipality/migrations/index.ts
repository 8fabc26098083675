import { initial } from './0001-initial.ts';
import { staffSignInMigration } from './0002-staff-sign-in.ts';
import { revocationLists } from './0003-revocation-lists.ts';
import { witnessedHeads } from './0004-witnessed-heads.ts';
import { fhirExport } from './0005-fhir-export.ts';
import { retention } from './0006-retention.ts';
import { residentPage } from './0007-resident-page.ts';
import { consentRevocations } from './0008-consent-revocations.ts';
import { blindCodes } from './0009-blind-codes.ts';
import { codeOutboxIndexes } from './0010-code-outbox-indexes.ts';

/**
 * A municipality's migrations, in order (tables, indexes and the append-only triggers; 0006 lets the retention rule alone delete,
 * docs/DESIGN.md §4.13; 0007 the resident page, §4.14; 0008 sends and keeps consent revocations, §4.4; 0009 marks codes of the
 * old derivation, §4.2; 0010 indexes the residents due for a code or a rekey, §4.2).
 */
export const MUNICIPALITY_MIGRATIONS = [initial, staffSignInMigration, revocationLists, witnessedHeads, fhirExport, retention, residentPage, consentRevocations, blindCodes, codeOutboxIndexes];
