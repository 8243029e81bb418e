// A withdrawal request the forum refuses until the session is confirmed (the reason
// `confirm_session_required`): ask the person to confirm who they are (Discourse's own
// confirm-session dialog), then send the very same request once more. Pure module.

export const CONFIRM_SESSION_REQUIRED = "confirm_session_required";

// call(): Promise<result>, rejecting with an RpcFailure { reason }.
// confirm(): Promise<boolean>, true once the person has confirmed, false if they gave up.
// Resolves with the result, or rejects with the failure (the original refusal when the person
// gave up; whatever the retry failed with otherwise). The retry happens at most once.
export async function callConfirmingSession({ call, confirm }) {
  try {
    return await call();
  } catch (e) {
    if (e?.reason !== CONFIRM_SESSION_REQUIRED) {
      throw e;
    }
    if (!(await confirm())) {
      throw e;
    }
    return await call();
  }
}

export const SECOND_FACTOR_REQUIRED = "second_factor_required";

// For a user with a second factor the forum then asks for it with Discourse's own second-factor
// page (/session/2fa?nonce=…), which makes the withdrawal itself once the factor is given: the
// challenge's nonce when a failure asks for that, otherwise null.
export function secondFactorNonce(failure) {
  if (failure?.reason !== SECOND_FACTOR_REQUIRED) {
    return null;
  }
  const nonce = failure.data?.second_factor_challenge_nonce;
  return typeof nonce === "string" && nonce !== "" ? nonce : null;
}
