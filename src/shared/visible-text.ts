/**
 * Foreign text (a registry's tags, platforms and messages, a pasted error)
 * made safe for a terminal: control characters (C0, DEL, C1) and bidi
 * overrides are written as visible `\u001b`-style escapes instead of
 * reaching the terminal. One function for the CLI's every output of such text.
 */
const UNSAFE = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

export function escapeControl(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
