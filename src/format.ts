/**
 * Numbers and times as the status bar and the panel print them.
 */
import type { KeySource } from './api';

/**
 * `0.42` in `USD` as `$0.42`; below a cent, two significant digits (`$0.0031`), so a
 * day of small calls never reads `$0.00`.
 */
export function money(amount: number, currency: string): string {
  const small = amount > 0 && amount < 0.01;
  const digits: Intl.NumberFormatOptions = small ? { maximumSignificantDigits: 2 } : {};
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency, ...digits }).format(
      amount
    );
  } catch {
    // a currency code Intl does not know
    return `${small ? amount.toPrecision(2) : amount.toFixed(2)} ${currency}`;
  }
}

/** Seconds as `42s`, `3m 05s` or `1h 02m`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  }
  return `${Math.floor(s / 3600)}h ${two(Math.floor(s / 60) % 60)}m`;
}

/** The last part of a server-relative path. */
export function basename(path: string): string {
  return path.split('/').pop() || path;
}

/** Where the key in force comes from, in words. */
export const KEY_SOURCE: Readonly<Record<KeySource, string>> = {
  argument: 'given by the launcher',
  environment: 'TOKENHOT_API_KEY in the server environment',
  stored: 'stored on this server',
  none: 'none set'
};
