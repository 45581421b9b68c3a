/**
 * The signer badge beside a plugin's version: "signed by alice", "modified: a.py, b.py"
 * (amber), "invalid" (red), "unsigned" (muted). No badge when no policy checks signatures.
 */
import type { IPluginView, ISignatureView } from '../protocol';
import { h } from './dom';

export function signatureText(sig: ISignatureView): string {
  switch (sig.status) {
    case 'signed':
      return sig.signer ? `signed by ${sig.signer}` : 'signed';
    case 'modified':
      return sig.files.length ? `modified: ${sig.files.join(', ')}` : 'modified';
    default:
      return sig.status; // invalid, unsigned, or a newer kernel's word: shown as it is
  }
}

/** The tooltip: what the status means for this plugin. */
export function signatureTitle(sig: ISignatureView): string {
  switch (sig.status) {
    case 'signed':
      return `every file matches what ${sig.signer ?? 'the signer'} signed`;
    case 'modified':
      return `changed since signing: ${sig.files.join(', ') || 'some files'}`;
    case 'invalid':
      return 'the signature does not verify against a trusted key';
    case 'unsigned':
      return 'no signature';
    default:
      return sig.status;
  }
}

export function renderSignature(p: IPluginView): HTMLElement | null {
  const sig = p.signature;
  if (!sig) {
    return null;
  }
  return h(
    'span',
    {
      className: `flx-Signature flx-Signature-${sig.status}`,
      'data-testid': `flx-signature-${p.name}`,
      'data-signature': sig.status,
      title: signatureTitle(sig)
    },
    signatureText(sig)
  );
}
