/**
 * The vaccine product catalogue (catalogue.json): COVID-19 products and the routine vaccines a
 * municipality schedules. Validated once when the module loads, so a broken catalogue stops the
 * service at startup rather than refusing records one by one. Frozen: read-only data, no state.
 *
 * Codes: every code beside a product comes from a published list named in `codeLists`, with the
 * list's version and where the code was read. Japanese codes (JP Core JP_Immunization's preferred
 * systems: HOT, YJ) come first, with the Japanese display of the list; CVX second. A product with
 * no published code carries none and says why in `uncoded` (docs/VACCINE-CODES.md, "Not found /
 * not assigned"): its FHIR vaccineCode is text only, with that reason as a note.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const CVX_SYSTEM = 'http://hl7.org/fhir/sid/cvx';

const productSchema = z.object({
  code: z.string().regex(/^[a-z0-9-]{2,40}$/),
  display: z.string().min(1),
  manufacturer: z.string().min(1),
  series: z.string().min(1),
  maxDoses: z.number().int().min(1).max(20),
  /** Lot numbers are printed on the vial label; a format check catches transcription slips. */
  lotPattern: z.string().min(1),
  lotExample: z.string().min(1),
  /** CDC CVX code, where one exists (Japanese-only products have none). */
  cvx: z.string().regex(/^\d{1,3}$/).optional(),
  /** English display of the CVX code, as the CVX list gives it (only where read from the list). */
  cvxDisplay: z.string().min(1).optional(),
  /** Codes of Japanese lists (`codeLists` keys), each with the list's own (Japanese) display. */
  codes: z.array(z.object({ list: z.string().min(1), code: z.string().regex(/^[0-9A-Z]{1,20}$/), display: z.string().min(1) }).strict()).optional(),
  /**
   * Why a product with no published code (no Japanese code, no CVX) has none, e.g. several
   * presentations with different codes and none chosen. Required exactly when it has no code: the
   * JP Core Immunization's note is built from it, so the reason travels with the text-only vaccineCode.
   */
  uncoded: z.string().min(20).max(400).optional(),
}).strict();

const codeListSchema = z.object({
  system: z.url(),
  identifiers: z.array(z.string().startsWith('urn:oid:')).optional(),
  name: z.string().min(1),
  version: z.string().min(1),
  source: z.string().min(1),
}).strict();

const catalogueSchema = z.object({
  system: z.url(),
  codeLists: z.record(z.string(), codeListSchema),
  series: z.record(z.string(), z.object({ display: z.string().min(1), seasonal: z.boolean() }).strict()),
  products: z.array(productSchema).min(1),
}).strict().superRefine((c, ctx) => {
  const codes = new Set<string>();
  for (const [i, p] of c.products.entries()) {
    if (codes.has(p.code)) ctx.addIssue({ code: 'custom', path: ['products', i, 'code'], message: 'duplicate product code' });
    codes.add(p.code);
    if (!c.series[p.series]) ctx.addIssue({ code: 'custom', path: ['products', i, 'series'], message: 'unknown series' });
    if (!new RegExp(p.lotPattern).test(p.lotExample)) ctx.addIssue({ code: 'custom', path: ['products', i, 'lotExample'], message: 'does not match lotPattern' });
    for (const [j, code] of (p.codes ?? []).entries()) {
      if (!c.codeLists[code.list] || code.list === 'cvx') ctx.addIssue({ code: 'custom', path: ['products', i, 'codes', j, 'list'], message: 'must name a Japanese list of codeLists' });
    }
    if (p.cvx && !c.codeLists.cvx) ctx.addIssue({ code: 'custom', path: ['codeLists', 'cvx'], message: 'the CVX list must be described' });
    if (p.cvxDisplay && !p.cvx) ctx.addIssue({ code: 'custom', path: ['products', i, 'cvxDisplay'], message: 'needs a cvx code' });
    // A CVX coding carries the CVX list's own English display, never our Japanese name (JP Core: display per its system).
    if (p.cvx && !p.cvxDisplay) ctx.addIssue({ code: 'custom', path: ['products', i, 'cvxDisplay'], message: 'is required with a cvx code (the CVX list\'s English display)' });
    const coded = Boolean(p.cvx) || (p.codes ?? []).length > 0;
    if (!coded && !p.uncoded) ctx.addIssue({ code: 'custom', path: ['products', i, 'uncoded'], message: 'is required for a product with no published code (say why none is given)' });
    if (coded && p.uncoded) ctx.addIssue({ code: 'custom', path: ['products', i, 'uncoded'], message: 'must be absent for a product with a published code' });
  }
});

export interface Product extends Readonly<z.infer<typeof productSchema>> {
  readonly lot: RegExp;
  readonly seasonal: boolean;
  readonly seriesDisplay: string;
}

export type CodeList = Readonly<z.infer<typeof codeListSchema>>;

function load(): { system: string; codeLists: Readonly<Record<string, CodeList>>; products: ReadonlyMap<string, Product> } {
  const raw = catalogueSchema.parse(JSON.parse(readFileSync(new URL('./catalogue.json', import.meta.url), 'utf8')));
  const products = new Map<string, Product>();
  for (const p of raw.products) {
    const series = raw.series[p.series]!;
    products.set(p.code, Object.freeze({ ...p, lot: new RegExp(p.lotPattern), seasonal: series.seasonal, seriesDisplay: series.display }));
  }
  return Object.freeze({ system: raw.system, codeLists: Object.freeze(raw.codeLists), products });
}

const CATALOGUE = load();

/** Parses a catalogue document with the rules applied at load (for tests of those rules). */
export const parseCatalogue = (document: unknown) => catalogueSchema.safeParse(document);

/** The code system URI of our own product codes (always present in a FHIR vaccineCode). */
export const CATALOGUE_SYSTEM = CATALOGUE.system;

export const findProduct = (code: string): Product | undefined => CATALOGUE.products.get(code);

export const allProducts = (): Product[] => [...CATALOGUE.products.values()];

/**
 * The product a coding names, if exactly one does: our own catalogue code, a code of a Japanese
 * list the catalogue cites (HOT9, YJ), or a CVX code. How an Immunization from a peer or a clinic's
 * system is read, whichever published code it leads with.
 */
export function findProductByCoding(system: string, code: string): Product | undefined {
  if (system === CATALOGUE.system) return findProduct(code);
  const lists = Object.entries(CATALOGUE.codeLists).filter(([, list]) => list.system === system || list.identifiers?.includes(system)).map(([key]) => key);
  if (lists.length === 0) return undefined;
  const matches = allProducts().filter((p) => (lists.includes('cvx') && p.cvx === code) || (p.codes ?? []).some((c) => lists.includes(c.list) && c.code === code));
  return matches.length === 1 ? matches[0] : undefined;
}

export interface PublishedCoding {
  system: string;
  code: string;
  display?: string;
}

/**
 * The note of a JP Core Immunization whose vaccine has no published code: its vaccineCode is text
 * only, and the note gives the catalogue's reason (`uncoded`), not a claim that no code exists.
 */
export const uncodedNote = (p: Product): string => `vaccineCode is text only, no HOT9, YJ or CVX code is given: ${p.uncoded ?? 'the catalogue gives none'}`;

/** The lists the catalogue's codes come from (name, version, source), by key. */
export const codeLists = (): Readonly<Record<string, CodeList>> => CATALOGUE.codeLists;

/**
 * The product's codes from published lists, as FHIR codings: Japanese lists first (with their
 * Japanese display), CVX second (with the English display of the CVX list, which the catalogue
 * holds for every CVX code). Empty when no published code is known: the caller writes text only.
 */
export function publishedCodings(p: Product): PublishedCoding[] {
  const codings: PublishedCoding[] = (p.codes ?? []).map((c) => ({ system: CATALOGUE.codeLists[c.list]!.system, code: c.code, display: c.display }));
  if (p.cvx) codings.push({ system: CVX_SYSTEM, code: p.cvx, display: p.cvxDisplay! });
  return codings;
}

/** What GET /vaccines shows: the catalogue, field by field. */
export const productView = (p: Product) => ({
  code: p.code, display: p.display, manufacturer: p.manufacturer, series: p.series, seriesDisplay: p.seriesDisplay,
  maxDoses: p.maxDoses, seasonal: p.seasonal, lotPattern: p.lotPattern, lotExample: p.lotExample, cvx: p.cvx ?? null,
});
