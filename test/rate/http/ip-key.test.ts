import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ipKey } from '../../../src/rate/http/index.js';

const req = (remoteAddress: string | undefined, xff?: string | string[]) => ({
  socket: { remoteAddress },
  headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
});

describe('ipKey', () => {
  it('uses the socket address and ignores X-Forwarded-For unless proxies are trusted', () => {
    const key = ipKey();
    assert.equal(key(req('10.0.0.1', '6.6.6.6')), '10.0.0.1');
    assert.equal(key(req('10.0.0.1', '7.7.7.7')), '10.0.0.1'); // no fresh key by spoofing
    assert.equal(ipKey({ trustProxy: 0 })(req('10.0.0.1', '6.6.6.6')), '10.0.0.1');
  });

  it('with trustProxy n takes the right-most untrusted entry; spaces, ports, empty entries tolerated', () => {
    const one = ipKey({ trustProxy: 1 });
    assert.equal(one(req('10.0.0.1', 'spoofed, 1.2.3.4')), '1.2.3.4');
    assert.equal(one(req('10.0.0.1', ' 6.6.6.6 ,  1.2.3.4:5678 , ')), '1.2.3.4');
    assert.equal(one(req('10.0.0.1', ['6.6.6.6', '[2001:db8::1]:443'])), '2001:db8:0:0:0:0:0:0/56');
    assert.equal(one(req('10.0.0.1')), '10.0.0.1'); // no header: the peer itself
    assert.equal(one(req('10.0.0.1', ' , ,')), '10.0.0.1');
    const two = ipKey({ trustProxy: 2 });
    assert.equal(two(req('10.0.0.1', '6.6.6.6, 1.2.3.4, 10.0.0.2')), '1.2.3.4');
    assert.equal(two(req('10.0.0.1', '1.2.3.4')), '1.2.3.4'); // fewer hops than trusted: left-most
  });

  it('malformed entries give one shared key, never one the sender chose', () => {
    const one = ipKey({ trustProxy: 1 });
    for (const bad of [
      'evil',
      '1.2.3.999',
      '1.2.3',
      '::g',
      'a'.repeat(10_000),

      '[::1',
      '1:2:3:4:5:6:7:8:9',
    ]) {
      assert.equal(one(req('10.0.0.1', `6.6.6.6, ${bad}`)), 'invalid-address', bad);
    }
  });

  it('groups IPv6 by /56 (configurable), drops zone ids, treats ::ffff: as IPv4', () => {
    const key = ipKey();
    assert.equal(key(req('2001:db8:abcd:12ff:1::1')), '2001:db8:abcd:1200:0:0:0:0/56');
    assert.equal(key(req('2001:db8:abcd:12aa::9')), '2001:db8:abcd:1200:0:0:0:0/56');
    assert.equal(key(req('fe80::1%eth0')), 'fe80:0:0:0:0:0:0:0/56');
    assert.equal(key(req('::ffff:1.2.3.4')), '1.2.3.4');
    assert.equal(key(req('::ffff:102:304')), '1.2.3.4');
    assert.equal(key(req('::1')), '0:0:0:0:0:0:0:0/56');
    assert.equal(ipKey({ ipv6Subnet: 128 })(req('2001:db8::1')), '2001:db8:0:0:0:0:0:1');
    assert.equal(ipKey({ ipv6Subnet: 64 })(req('2001:db8:1:2:3::1')), '2001:db8:1:2:0:0:0:0/64');
    assert.equal(ipKey({ ipv6Subnet: 1 })(req('ffff::1')), '8000:0:0:0:0:0:0:0/1');
    assert.equal(key(req(undefined)), 'disconnected'); // the socket already closed
  });

  it('validates its options eagerly', () => {
    assert.throws(() => ipKey({ ipv6Subnet: 0 }), /Expected `ipv6Subnet` to be a positive integer/);
    assert.throws(() => ipKey({ ipv6Subnet: 129 }), /Expected `ipv6Subnet` to be an integer from 1 to 128/);
    assert.throws(() => ipKey({ trustProxy: true as unknown as number }), /Expected `trustProxy`/);
    assert.throws(() => ipKey({ trustProxy: -1 }), /Expected `trustProxy`/);
    assert.throws(() => ipKey()({}), /ipKey needs a Node request/);
  });

  it('property: any header gives a key of at most 43 characters, and no fresh key without trust', () => {
    const one = ipKey({ trustProxy: 1 });
    const none = ipKey();
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.ipV4(), fc.ipV6(), (xff, v4, v6) => {
        const k = one(req('10.0.0.1', xff));
        assert.ok(k.length <= 43, k);
        assert.equal(none(req(v4, xff)), v4.split('.').map(Number).join('.'));
        assert.ok(none(req(v6, xff)).length <= 43);
      }),
      { numRuns: 500 },
    );
  });

  it('reads canonical IPv4 socket addresses without parsing, and hands anything else to the parser', () => {
    const key = ipKey();
    const at = (remoteAddress: string) => key({ socket: { remoteAddress }, headers: {} });
    assert.equal(at('10.1.2.3'), '10.1.2.3');
    assert.equal(at('10.1.2.3'), '10.1.2.3');
    assert.equal(at('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(at('010.1.2.3'), '10.1.2.3');
    assert.equal(at('::ffff:010.1.2.3'), '10.1.2.3');
    assert.equal(at('1.2.3.256'), 'invalid-address');
    assert.equal(at('1.2.3'), 'invalid-address');
    assert.equal(at('1.2.3.4.5'), 'invalid-address');
    assert.equal(at('2001:db8:aaaa:bbcc::1'), '2001:db8:aaaa:bb00:0:0:0:0/56');
  });
});
