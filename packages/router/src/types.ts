/** The iq and module types routing uses come from the module contract (@hyphae/module-api). */
export type { IqTarget, IqRequest, IqHandler, IqRoute, IqReply, Spec } from '@hyphae/module-api';
