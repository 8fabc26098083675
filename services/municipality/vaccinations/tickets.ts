/**
 * The vaccination ticket (接種券) OCR line: 18 digits =
 *   ticket type (1) + dose number (1) + municipality code (6, last digit a check digit) + ticket number (10).
 * VRS read these lines by OCR and a misread digit attached doses to the wrong person, so a line is
 * parsed strictly: a line that does not parse is refused (rescan it), never guessed at.
 */
import { badRequest } from '../../../shared/platform/errors.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';

/** Ticket type digit → the kind of vaccination it admits to. */
export const TICKET_TYPES = { 1: 'covid-19', 2: 'routine' } as const;
export type TicketType = keyof typeof TICKET_TYPES;

export interface ParsedTicket {
  type: TicketType;
  doseNumber: number;
  municipalityCode: string;
  ticketNumber: string;
}

export const OCR_FIELD = 'ocrLine';

/**
 * Parses an OCR line. Full-width digits, spaces and hyphens (as scanners and keyboards produce
 * them) are normalized first; anything else that is not a digit is refused.
 * @throws AppError 400 naming `ocrLine` and the part that broke its rule.
 */
export function parseOcrLine(input: unknown): ParsedTicket {
  if (typeof input !== 'string') throw badRequest(OCR_FIELD, 'must be a string of 18 digits');
  const line = input.normalize('NFKC').replace(/[\s-]/g, '');
  if (!/^\d*$/.test(line)) throw badRequest(OCR_FIELD, 'must contain digits only');
  if (line.length !== 18) {
    throw badRequest(OCR_FIELD, 'must be exactly 18 digits: ticket type (1), dose number (1), municipality code (6), ticket number (10)');
  }
  const type = Number(line[0]);
  if (!(type in TICKET_TYPES)) throw badRequest(OCR_FIELD, 'ticket type (digit 1) must be 1 (COVID-19) or 2 (routine)');
  const doseNumber = Number(line[1]);
  if (doseNumber < 1) throw badRequest(OCR_FIELD, 'dose number (digit 2) must be 1 to 9');
  const municipalityCode = line.slice(2, 8);
  if (!isValidMunicipalityCode(municipalityCode)) {
    throw badRequest(OCR_FIELD, 'municipality code (digits 3 to 8) must have a valid check digit');
  }
  const ticketNumber = line.slice(8);
  if (/^0+$/.test(ticketNumber)) throw badRequest(OCR_FIELD, 'ticket number (digits 9 to 18) must not be all zeros');
  return { type: type as TicketType, doseNumber, municipalityCode, ticketNumber };
}

/** The OCR line printed on a ticket this municipality issues. */
export function formatOcrLine(ticket: ParsedTicket): string {
  return `${ticket.type}${ticket.doseNumber}${ticket.municipalityCode}${ticket.ticketNumber}`;
}

/** Whether a product of `series` may be given on a ticket of `type`. */
export const ticketAdmits = (type: TicketType, series: string): boolean =>
  TICKET_TYPES[type] === 'covid-19' ? series === 'covid-19' : series !== 'covid-19';
