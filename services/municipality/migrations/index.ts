import { initial } from './0001-initial.ts';
import { staffSignInMigration } from './0002-staff-sign-in.ts';
import { revocationLists } from './0003-revocation-lists.ts';
import { witnessedHeads } from './0004-witnessed-heads.ts';
import { fhirExport } from './0005-fhir-export.ts';
import { retention } from './0006-retention.ts';
import { blindCodes } from './0007-blind-codes.ts';

/** A municipality's migrations, in order (tables, indexes and the append-only triggers; 0006 lets the retention rule alone delete, docs/DESIGN.md §4.13; 0007 marks codes of the old derivation, §4.2). */
export const MUNICIPALITY_MIGRATIONS = [initial, staffSignInMigration, revocationLists, witnessedHeads, fhirExport, retention, blindCodes];
