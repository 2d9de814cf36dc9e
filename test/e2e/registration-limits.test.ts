/**
 * XEP-0077 registration attempts per stream, through a real c2s stream
 * (issue 21, finding 7: one stream sent 375 refused attempts a second, each
 * paying a PBKDF2 derivation). Past registration.maxAttemptsPerStream the
 * client gets <policy-violation/> for the attempt, then the stream error of
 * the same name, in that order; a new connection may try again. That no
 * derivation happens for a refused attempt is proven by the module's unit
 * tests (packages/modules/src/register/register.test.ts), which count them.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/registration-limits.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawStream, stanzaErrorCondition, tryRegister, uniqueName, type XmlElement } from '../harness/clients.js';
import { embeddedSkipReason, startEmbedded, type HyphaeServer } from '../harness/server.js';

const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const LIMIT = 3;

describe('registration attempts per stream', { skip: embeddedSkipReason() ?? false }, () => {
  let server: HyphaeServer;

  before(async () => {
    server = await startEmbedded({ config: { registration: { open: true, maxAttemptsPerStream: LIMIT } } });
  });
  after(async () => {
    await server?.dispose();
  });

  it(`the attempt past ${LIMIT} on one stream: <policy-violation/>, then the stream is closed with <policy-violation/>`, async () => {
    const raw = await RawStream.connect(server);
    try {
      const features = await raw.openStream();
      if (features.getChild('starttls', NS_TLS)) await raw.starttls();
      const taken = uniqueName('taken');
      const answers: string[] = [];
      let last: XmlElement | null = null;
      for (let i = 0; i <= LIMIT; i++) {
        const id = `r${i}`;
        // The same name every time: after the first, refused attempts (conflict) count too.
        await raw.write(`<iq type='set' id='${id}'><query xmlns='jabber:iq:register'><username>${taken}</username><password>pw-${i}</password></query></iq>`);
        last = await raw.next((el) => el.name === 'iq' && el.attrs.id === id, 10_000, `the answer to attempt ${i + 1}`);
        answers.push(last.attrs.type === 'result' ? 'result' : (stanzaErrorCondition(last) ?? '?'));
      }
      assert.deepEqual(answers, ['result', 'conflict', 'conflict', 'policy-violation']);
      assert.equal(last?.getChild('error')?.attrs.type, 'wait');
      assert.equal(await raw.streamError(10_000), 'policy-violation');
      await raw.waitClosed(10_000);
      // The stanza error came before the stream error on the wire.
      const reply = Math.max(raw.received.indexOf("id='r3'"), raw.received.indexOf('id="r3"'));
      assert.ok(reply >= 0 && reply < raw.received.indexOf('<stream:error'), raw.received.slice(-800));
    } finally {
      raw.destroy();
    }
    // Another connection starts with a count of its own.
    const again = await tryRegister(server, uniqueName('next'), 'pw');
    assert.equal(again.type, 'result', again.stanza.toString());
  });
});
