/**
 * Split a concatenation of DER values (the Workload API sends chains and bundles as
 * back-to-back DER certificates) into its elements. Each must be a definite-length SEQUENCE that
 * fits in what is left; anything else (trailing bytes, indefinite lengths, a truncated element)
 * returns undefined. At most `maxElements` elements.
 */
export function splitDerSequences(data: Uint8Array, maxElements: number): Buffer[] | undefined {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    if (out.length === maxElements) return undefined;
    if (buffer[offset] !== 0x30) return undefined;
    const first = buffer[offset + 1];
    if (first === undefined) return undefined;
    let length: number;
    let header: number;
    if (first < 0x80) {
      length = first;
      header = 2;
    } else {
      const octets = first & 0x7f;
      // 0x80 is the indefinite form (not DER); more than 4 length octets is more than we accept.
      if (octets === 0 || octets > 4) return undefined;
      length = 0;
      for (let i = 0; i < octets; i++) {
        const byte = buffer[offset + 2 + i];
        if (byte === undefined) return undefined;
        length = length * 256 + byte;
      }
      header = 2 + octets;
    }
    const end = offset + header + length;
    if (end > buffer.length) return undefined;
    out.push(Buffer.from(buffer.subarray(offset, end)));
    offset = end;
  }
  return out;
}

/** PEM of one DER certificate. */
export function certificatePem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
