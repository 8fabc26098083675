/**
 * The vaccine product catalogue (catalogue.json): COVID-19 products and the routine vaccines a
 * municipality schedules. Validated once when the module loads, so a broken catalogue stops the
 * service at startup rather than refusing records one by one. Frozen: read-only data, no state.
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
}).strict();

const catalogueSchema = z.object({
  system: z.url(),
  series: z.record(z.string(), z.object({ display: z.string().min(1), seasonal: z.boolean() }).strict()),
  products: z.array(productSchema).min(1),
}).strict().superRefine((c, ctx) => {
  const codes = new Set<string>();
  for (const [i, p] of c.products.entries()) {
    if (codes.has(p.code)) ctx.addIssue({ code: 'custom', path: ['products', i, 'code'], message: 'duplicate product code' });
    codes.add(p.code);
    if (!c.series[p.series]) ctx.addIssue({ code: 'custom', path: ['products', i, 'series'], message: 'unknown series' });
    if (!new RegExp(p.lotPattern).test(p.lotExample)) ctx.addIssue({ code: 'custom', path: ['products', i, 'lotExample'], message: 'does not match lotPattern' });
  }
});

export interface Product extends Readonly<z.infer<typeof productSchema>> {
  readonly lot: RegExp;
  readonly seasonal: boolean;
  readonly seriesDisplay: string;
}

function load(): { system: string; products: ReadonlyMap<string, Product> } {
  const raw = catalogueSchema.parse(JSON.parse(readFileSync(new URL('./catalogue.json', import.meta.url), 'utf8')));
  const products = new Map<string, Product>();
  for (const p of raw.products) {
    const series = raw.series[p.series]!;
    products.set(p.code, Object.freeze({ ...p, lot: new RegExp(p.lotPattern), seasonal: series.seasonal, seriesDisplay: series.display }));
  }
  return Object.freeze({ system: raw.system, products });
}

const CATALOGUE = load();

/** The code system URI of our own product codes (always present in a FHIR vaccineCode). */
export const CATALOGUE_SYSTEM = CATALOGUE.system;

export const findProduct = (code: string): Product | undefined => CATALOGUE.products.get(code);

export const allProducts = (): Product[] => [...CATALOGUE.products.values()];

/** The product with this CVX code, if exactly one has it. */
export function findProductByCvx(cvx: string): Product | undefined {
  const matches = allProducts().filter((p) => p.cvx === cvx);
  return matches.length === 1 ? matches[0] : undefined;
}

/** What GET /vaccines shows: the catalogue, field by field. */
export const productView = (p: Product) => ({
  code: p.code, display: p.display, manufacturer: p.manufacturer, series: p.series, seriesDisplay: p.seriesDisplay,
  maxDoses: p.maxDoses, seasonal: p.seasonal, lotPattern: p.lotPattern, lotExample: p.lotExample, cvx: p.cvx ?? null,
});
