/**
 * Bad input gets a clear protocol error (DESIGN.md invariant 5, RFC 6120
 * §4.9 and §11): never a crash, never a hang. After every case, a new client
 * still logs in and pings the server.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/bad-input.test.js
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NS, RawStream, Session, assertServes, login, newAccount, uniqueName, withTimeout, xml } from '../harness/clients.js';
import { clusterSkipReason, embeddedSkipReason, startCluster, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { withServerLogs } from '../harness/util.js';

type Mode = 'embedded' | 'cluster';

const STREAM_NS = `xmlns='jabber:client' xmlns:stream='${NS.stream}'`;

function badInputSuite(mode: Mode): void {
  const skip = mode === 'embedded' ? embeddedSkipReason() : clusterSkipReason();
  describe(`bad input (${mode})`, () => {
    let server: HyphaeServer | undefined;
    let account: { username: string; password: string; bare: string } | undefined;
    const srv = (): HyphaeServer => {
      if (!server) throw new Error('server did not start');
      return server;
    };
    const acct = (): { username: string; password: string } => {
      if (!account) throw new Error('no account');
      return account;
    };
    const lastNode = (): number => srv().c2s.length - 1;

    /** After a bad-input case: every process is alive and a fresh client logs in and pings. */
    async function stillServes(): Promise<void> {
      for (const st of srv().exitStatus()) {
        assert.equal(st.code, null, `${st.name} exited with code ${st.code}`);
        assert.equal(st.signal, null, `${st.name} died with ${st.signal}`);
      }
      for (let node = 0; node < srv().c2s.length; node++) await assertServes(srv(), acct(), node);
    }

    /** A raw stream, TLS and authenticated (PLAIN) and bound. */
    async function authedRaw(node = 0): Promise<{ raw: RawStream; jid: string }> {
      const raw = await RawStream.connect(srv(), { node });
      const jid = await raw.loginPlain(acct().username, acct().password);
      return { raw, jid };
    }

    /** Expects the stream error `condition`, then that the server closes the connection. */
    async function expectStreamError(raw: RawStream, conditions: string | string[], what: string): Promise<string> {
      const want = Array.isArray(conditions) ? conditions : [conditions];
      try {
        const got = await raw.streamError(10_000);
        assert.ok(want.includes(got), `${what}: stream error <${got}/>, expected <${want.join('/> or <')}/>`);
        await raw.waitClosed(10_000);
        return got;
      } finally {
        raw.destroy();
      }
    }

    const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
      it(name, { timeout: 60_000, skip: skip ?? false }, (t) =>
        withServerLogs(t, server, async () => {
          await fn(t);
          await stillServes();
        }),
      );
    };

    before(async () => {
      if (skip) return;
      server = mode === 'embedded' ? await startEmbedded() : await startCluster({ c2sNodes: 2 });
      account = await newAccount(server, 'bad');
    }, { timeout: 120_000 });
    after(async () => {
      await server?.dispose();
    });

    test('malformed XML before authentication → <not-well-formed/> and close', async () => {
      const raw = await RawStream.connect(srv());
      await raw.openStream();
      await raw.write('<message><body>unclosed</message>');
      await expectStreamError(raw, 'not-well-formed', 'mismatched end tag before auth');
    });

    test('malformed XML after authentication → <not-well-formed/> and close', async () => {
      const { raw, jid } = await authedRaw(lastNode());
      await raw.write(`<message to='${jid}'><body>unclosed</message>`);
      await expectStreamError(raw, 'not-well-formed', 'mismatched end tag after auth');
    });

    test('a duplicate attribute → <not-well-formed/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(`<message to='${jid}' type='chat' type='normal'><body>dup attr</body></message>`);
      await expectStreamError(raw, 'not-well-formed', 'duplicate attribute');
    });

    test('an unbound namespace prefix → <not-well-formed/> or <bad-namespace-prefix/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(`<message to='${jid}'><foo:body>x</foo:body></message>`);
      await expectStreamError(raw, ['not-well-formed', 'bad-namespace-prefix'], 'unbound prefix');
    });

    test('garbage instead of a stream header → <not-well-formed/>', async () => {
      const raw = await RawStream.connect(srv());
      await raw.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n<<<>>>');
      // The server must still open its side of the stream to send the error (RFC 6120 §4.9.1.1).
      await expectStreamError(raw, 'not-well-formed', 'HTTP request');
    });

    test('a DOCTYPE with entities before the stream header → <restricted-xml/>', async () => {
      const raw = await RawStream.connect(srv());
      await raw.write(
        `<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>` +
          `<stream:stream to='${srv().domain}' version='1.0' ${STREAM_NS}>`,
      );
      await expectStreamError(raw, 'restricted-xml', 'DOCTYPE in prolog');
    });

    test('a DOCTYPE with an external entity inside an authenticated stream → <restricted-xml/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(
        `<!DOCTYPE message [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]><message to='${jid}'><body>&xxe;</body></message>`,
      );
      await expectStreamError(raw, 'restricted-xml', 'DOCTYPE in stream');
    });

    test('an undeclared entity reference → <restricted-xml/> or <not-well-formed/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(`<message to='${jid}'><body>&xxe;</body></message>`);
      await expectStreamError(raw, ['restricted-xml', 'not-well-formed'], 'entity reference');
    });

    test('an XML comment in the stream → <restricted-xml/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(`<message to='${jid}'><!-- a comment --><body>x</body></message>`);
      await expectStreamError(raw, 'restricted-xml', 'comment');
    });

    test('a processing instruction in the stream → <restricted-xml/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(`<?evil stuff?><message to='${jid}'><body>x</body></message>`);
      await expectStreamError(raw, 'restricted-xml', 'processing instruction');
    });

    async function sendHuge(raw: RawStream, prefix: string, totalBytes: number): Promise<void> {
      await raw.write(prefix);
      const chunk = 'A'.repeat(64 * 1024);
      for (let sent = 0; sent < totalBytes && !raw.isClosed; sent += chunk.length) {
        // A server that stops reading (instead of answering) must not wedge the test: the stream-error wait decides.
        const stalled = await withTimeout(raw.write(chunk), 10_000, 'write').then(() => false, () => true);
        if (stalled) break;
      }
    }

    test('a 2 MiB stanza after authentication → <policy-violation/>', async (t) => {
      const { raw, jid } = await authedRaw(lastNode());
      const started = Date.now();
      await sendHuge(raw, `<message to='${jid}'><body>`, 2 * 1024 * 1024);
      await raw.write('</body></message>');
      await expectStreamError(raw, 'policy-violation', '2 MiB stanza');
      t.diagnostic(`stream error after ${Date.now() - started} ms`);
    });

    test('a 2 MiB element before authentication → <policy-violation/>', async () => {
      const raw = await RawStream.connect(srv());
      await raw.openStream();
      await sendHuge(raw, `<iq type='set' id='big'><query xmlns='${NS.register}'><username>`, 2 * 1024 * 1024);
      await expectStreamError(raw, 'policy-violation', '2 MiB pre-auth element');
    });

    test('XML nested 10,000 deep → <policy-violation/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(`<message to='${jid}'>` + '<x>'.repeat(10_000));
      await expectStreamError(raw, 'policy-violation', 'deep nesting');
    });

    test('invalid UTF-8 → <not-well-formed/> or <unsupported-encoding/>', async () => {
      const { raw, jid } = await authedRaw();
      await raw.write(Buffer.concat([Buffer.from(`<message to='${jid}'><body>`), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('</body></message>')]));
      await expectStreamError(raw, ['not-well-formed', 'unsupported-encoding'], 'invalid UTF-8');
    });

    test('wrong stream namespace → <invalid-namespace/>', async () => {
      const raw = await RawStream.connect(srv());
      await raw.write(`<?xml version='1.0'?><stream:stream to='${srv().domain}' version='1.0' xmlns='jabber:client' xmlns:stream='urn:wrong'>`);
      await expectStreamError(raw, 'invalid-namespace', 'wrong stream namespace');
    });

    test('stream to a domain not served → <host-unknown/>', async () => {
      const raw = await RawStream.connect(srv());
      await raw.write(raw.headerXml('not-served.example'));
      await expectStreamError(raw, 'host-unknown', 'unknown host');
    });

    test('a stanza before authentication (after STARTTLS) → <not-authorized/>', async () => {
      const raw = await RawStream.connect(srv());
      await raw.openStream();
      await raw.starttls();
      await raw.write(`<message to='${acct().username}@${srv().domain}'><body>sneaky</body></message>`);
      await expectStreamError(raw, 'not-authorized', 'message before SASL');
    });

    test('a stanza before STARTTLS → <not-authorized/>', async () => {
      const raw = await RawStream.connect(srv());
      await raw.openStream();
      await raw.write(`<presence/>`);
      await expectStreamError(raw, 'not-authorized', 'presence before TLS');
    });

    test('PLAIN before STARTTLS is refused', async () => {
      const raw = await RawStream.connect(srv());
      try {
        await raw.openStream();
        const payload = Buffer.from(`\0${acct().username}\0${acct().password}`).toString('base64');
        await raw.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${payload}</auth>`);
        const answer = await raw.next((el) => el.getNS() === NS.sasl || el.name === 'stream:error', 10_000, 'answer to PLAIN without TLS');
        assert.notEqual(answer.name, 'success', 'PLAIN succeeded without TLS');
      } finally {
        raw.destroy();
      }
    });

    test('a spoofed `from` is never delivered: the recipient sees the real full JID', async (t) => {
      const victim = `${uniqueName('victim')}@${srv().domain}/x`;
      const receiver: Session = await login(srv(), { ...(await newAccount(srv(), 'rcpt')), node: lastNode(), resource: 'r' });
      const sender: Session = await login(srv(), { ...(await newAccount(srv(), 'spoof')), node: 0, resource: 's' });
      try {
        const spoofs = [victim, `admin@elsewhere.example/x`, `${sender.bare}/other-resource`, srv().domain];
        for (const [i, from] of spoofs.entries()) {
          await sender.sendRaw(`<message to='${receiver.jid}' from='${from}' id='spoof-${i}' type='chat'><body>spoof ${i}</body></message>`);
          if (!sender.isOnline) break;
        }
        await sender.sendRaw(`<message to='${receiver.jid}' id='honest' type='chat'><body>honest</body></message>`).catch(() => undefined);
        const closedWithError = await Promise.race([
          sender.waitStreamError(3_000).then((c) => c, () => null),
          receiver.waitFor((m) => m.attrs.id === 'honest', 3_000).then(() => null, () => null),
        ]);
        // Whatever reached the receiver carries the sender's real full JID.
        await new Promise((r) => setTimeout(r, 500));
        const got = receiver.buffered((m) => m.name === 'message' && (m.attrs.id ?? '').startsWith('spoof-'));
        for (const m of got) assert.equal(m.attrs.from, sender.jid, `spoofed message delivered as ${m.toString()}`);
        if (closedWithError !== null) {
          // RFC 6120 §4.9.3.9: the server may instead close the stream with <invalid-from/>.
          assert.equal(closedWithError, 'invalid-from');
          t.diagnostic(`server refused the spoof with <${closedWithError}/> after ${got.length} message(s)`);
        } else {
          assert.equal(got.length, spoofs.length, `server neither stamped nor refused: ${got.length} of ${spoofs.length} spoofed messages arrived`);
          t.diagnostic('server stamped the real from on every spoofed message');
        }
        // An iq too.
        if (sender.isOnline) {
          const seen: string[] = [];
          receiver.client.iqCallee.get('urn:hyphae:e2e:who', 'who', (ctx) => {
            seen.push(ctx.stanza.attrs.from ?? '');
            return xml('who', { xmlns: 'urn:hyphae:e2e:who' });
          });
          const res = await sender.iq(xml('iq', { type: 'get', to: receiver.jid, from: victim }, xml('who', { xmlns: 'urn:hyphae:e2e:who' })), 5_000).catch(
            (e: Error) => e,
          );
          if (!(res instanceof Error)) assert.deepEqual(seen, [sender.jid]);
        }
      } finally {
        await sender.stop();
        await receiver.stop();
      }
    });
  });
}

badInputSuite('embedded');
badInputSuite('cluster');
