import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DerError, DerReader, decodeBitString, decodeOid, readOne } from './der-reader.js';
import {
  boolean,
  encodeLength,
  explicit,
  generalizedTime,
  ia5String,
  implicit,
  integer,
  namedBits,
  nullValue,
  octetString,
  oid,
  printableString,
  sequence,
  setOf,
  unsignedInteger,
  utcTime,
  utf8String,
  x509Time,
} from './der-writer.js';

const hex = (b: Buffer) => b.toString('hex');

describe('der writer', () => {
  const cases: { name: string; got: () => Buffer; want: string }[] = [
    { name: 'encodes a short length', got: () => encodeLength(127), want: '7f' },
    { name: 'encodes a one-byte long length', got: () => encodeLength(128), want: '8180' },
    { name: 'encodes a two-byte long length', got: () => encodeLength(256), want: '820100' },
    { name: 'encodes a three-byte long length', got: () => encodeLength(65536), want: '83010000' },
    { name: 'encodes integer zero', got: () => integer(0), want: '020100' },
    { name: 'encodes integer 127', got: () => integer(127n), want: '02017f' },
    { name: 'pads integer 128 to stay positive', got: () => integer(128), want: '02020080' },
    { name: 'encodes integer 256', got: () => integer(256), want: '02020100' },
    { name: 'encodes integer -1', got: () => integer(-1), want: '0201ff' },
    { name: 'encodes integer -128', got: () => integer(-128n), want: '020180' },
    { name: 'encodes integer -129', got: () => integer(-129), want: '0202ff7f' },
    {
      name: 'pads a serial with the high bit set',
      got: () => unsignedInteger(Buffer.from([0x80, 1])),
      want: '0203008001',
    },
    {
      name: 'strips leading zero bytes of a serial',
      got: () => unsignedInteger(Buffer.from([0, 0, 5])),
      want: '020105',
    },
    { name: 'encodes an rsa oid', got: () => oid('1.2.840.113549'), want: '06062a864886f70d' },
    { name: 'encodes basicConstraints oid', got: () => oid('2.5.29.19'), want: '0603551d13' },
    {
      name: 'encodes a joint-iso oid with a large second arc',
      got: () => oid('2.999.3'),
      want: '0603883703',
    },
    { name: 'encodes digitalSignature+keyCertSign', got: () => namedBits([0, 5]), want: '03020284' },
    { name: 'encodes the SPIRE leaf key usage', got: () => namedBits([0, 2, 4]), want: '030203a8' },
    { name: 'encodes decipherOnly in a second byte', got: () => namedBits([8]), want: '0303070080' },
    { name: 'encodes an empty named bit list', got: () => namedBits([]), want: '030100' },
    { name: 'encodes TRUE as 0xff', got: () => boolean(true), want: '0101ff' },
    { name: 'encodes FALSE', got: () => boolean(false), want: '010100' },
    { name: 'encodes NULL', got: () => nullValue(), want: '0500' },
    { name: 'encodes an octet string', got: () => octetString(Buffer.from([1, 2])), want: '04020102' },
    { name: 'encodes a utf8 string', got: () => utf8String('é'), want: '0c02c3a9' },
    { name: 'encodes an explicit tag', got: () => explicit(0, integer(2)), want: 'a003020102' },
    { name: 'encodes an implicit primitive tag', got: () => implicit(6, Buffer.from('a')), want: '860161' },
    {
      name: 'encodes an implicit constructed tag',
      got: () => implicit(1, Buffer.alloc(0), true),
      want: 'a100',
    },
    {
      name: 'sorts a SET OF by encoding',
      got: () => setOf(integer(2), integer(1)),
      want: '3106020101020102',
    },
    {
      name: 'encodes the last UTCTime year',
      got: () => utcTime(new Date('2049-12-31T23:59:59.999Z')),
      want: hex(Buffer.concat([Buffer.from([0x17, 13]), Buffer.from('491231235959Z')])),
    },
    {
      name: 'encodes 1950 as UTCTime',
      got: () => x509Time(new Date('1950-01-01T00:00:00Z')),
      want: hex(Buffer.concat([Buffer.from([0x17, 13]), Buffer.from('500101000000Z')])),
    },
    {
      name: 'switches to GeneralizedTime in 2050',
      got: () => x509Time(new Date('2050-01-01T00:00:00Z')),
      want: hex(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('20500101000000Z')])),
    },
    {
      name: 'uses GeneralizedTime before 1950',
      got: () => x509Time(new Date('1949-12-31T23:59:59Z')),
      want: hex(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('19491231235959Z')])),
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.equal(hex(tc.got()), tc.want));
  }

  const misuse: { name: string; run: () => unknown; message: RegExp }[] = [
    { name: 'rejects a negative length', run: () => encodeLength(-1), message: /invalid length -1/ },
    { name: 'rejects an oid with a bad first arc', run: () => oid('3.1'), message: /invalid oid "3.1"/ },
    { name: 'rejects an oid with second arc over 39', run: () => oid('1.40'), message: /invalid oid "1.40"/ },
    { name: 'rejects an oid with a leading zero', run: () => oid('1.2.03'), message: /invalid oid/ },
    {
      name: 'rejects a UTCTime after 2049',
      run: () => utcTime(new Date('2050-01-01Z')),
      message: /utc time/,
    },
    { name: 'rejects an invalid date', run: () => x509Time(new Date(Number.NaN)), message: /invalid date/ },
    { name: 'rejects a non-printable string', run: () => printableString('a@b'), message: /not a printable/ },
    { name: 'rejects a non-ascii ia5 string', run: () => ia5String('é'), message: /not an ia5 string/ },
    { name: 'rejects an unsafe integer', run: () => integer(2 ** 60), message: /not a safe integer/ },
    { name: 'rejects context tag 31', run: () => explicit(31), message: /invalid context tag/ },
  ];
  for (const tc of misuse) {
    it(tc.name, () => assert.throws(tc.run, { name: 'RangeError', message: tc.message }));
  }

  it('writes structures that openssl asn1parse reads back', () => {
    const der = sequence(
      integer(-5),
      boolean(true),
      nullValue(),
      oid('2.5.4.3'),
      utf8String('Tessera'),
      printableString('US'),
      ia5String('spiffe://example.org/x'),
      generalizedTime(new Date('2051-02-03T04:05:06Z')),
      octetString(Buffer.alloc(300, 7)),
      setOf(integer(1)),
    );
    const r = spawnSync('openssl', ['asn1parse', '-inform', 'DER'], { input: der, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const want of [
      /INTEGER\s+:-05/,
      /BOOLEAN\s+:255/,
      /NULL/,
      /OBJECT\s+:commonName/,
      /UTF8STRING\s+:Tessera/,
      /PRINTABLESTRING\s+:US/,
      /IA5STRING\s+:spiffe:\/\/example.org\/x/,
      /GENERALIZEDTIME\s+:20510203040506Z/,
      /l= 300 prim: OCTET STRING/,
      /SET/,
    ]) {
      assert.match(r.stdout, want);
    }
  });

  it('round-trips any oid through the reader', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 39 }),
        fc.array(fc.bigInt({ min: 0n, max: 2n ** 70n }), { maxLength: 8 }),
        (a, b, rest) => {
          const dotted = [a, b, ...rest].join('.');
          assert.equal(decodeOid(readOne(oid(dotted), 0x06, 'oid').content), dotted);
        },
      ),
    );
  });

  it('round-trips named bits through the reader', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 10 }), (bits) => {
        const { bytes, unusedBits } = decodeBitString(readOne(namedBits(bits), 0x03, 'bits').content);
        const got: number[] = [];
        for (let i = 0; i < bytes.length * 8 - unusedBits; i++) {
          if (((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1) got.push(i);
        }
        assert.deepEqual(
          got,
          [...bits].sort((x, y) => x - y),
        );
        if (bits.length) assert.equal(((bytes[bytes.length - 1] as number) >> unusedBits) & 1, 1);
      }),
    );
  });
});

describe('der reader', () => {
  const bad: { name: string; input: string; message: RegExp }[] = [
    { name: 'rejects an indefinite length', input: '3080', message: /indefinite length/ },
    { name: 'rejects a non-minimal long length', input: '30810100', message: /non-minimal length/ },
    { name: 'rejects a length with a leading zero byte', input: '3082000100', message: /non-minimal length/ },
    { name: 'rejects a truncated value', input: '300301', message: /truncated/ },
    { name: 'rejects a missing length', input: '30', message: /truncated/ },
    { name: 'rejects a high tag number', input: '1f0100', message: /high tag number/ },
    { name: 'rejects trailing data', input: '300000', message: /trailing data/ },
    { name: 'rejects a tag mismatch', input: '0400', message: /expected tag 0x30/ },
  ];
  for (const tc of bad) {
    it(tc.name, () =>
      assert.throws(
        () => readOne(Buffer.from(tc.input, 'hex'), 0x30, 'x'),
        (err: unknown) => {
          assert.ok(err instanceof DerError);
          assert.match(err.message, tc.message);
          return true;
        },
      ),
    );
  }

  it('reads nested elements without copying', () => {
    const der = sequence(integer(1), octetString(Buffer.from('hi')));
    const r = new DerReader(readOne(der, 0x30, 'seq').content);
    assert.equal(hex(r.read(0x02).content), '01');
    assert.equal(r.readOptional(0x01), undefined);
    assert.equal(r.read(0x04).content.toString(), 'hi');
    assert.equal(r.atEnd(), true);
  });

  it('never throws anything but DerError on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const r = new DerReader(Buffer.from(bytes));
          while (!r.atEnd()) r.read();
        } catch (err) {
          assert.ok(err instanceof DerError, String(err));
        }
      }),
    );
  });
});
