# frozen_string_literal: true

module ::FiberLink
  # POST /fiber-link/rpc {method, params}: forwards an allow-list of methods to the Fiber Link
  # service. Logged-in users only; Discourse checks the CSRF token. The rules (which methods,
  # whose identities, which posts) live in FiberLink::RpcProxy and FiberLink::TipPolicy.
  #
  # A withdrawal request asks who you are twice over, with Discourse's own mechanisms:
  #   1. a confirmed session (POST /u/confirm-session: password or passkey; the client shows
  #      core's ConfirmSession dialog on the reason confirm_session_required and retries);
  #   2. for users with a second factor, that factor (run_second_factor!: the client opens core's
  #      second-factor page on second_factor_required, and that page calls
  #      POST /fiber-link/withdrawals/second-factor, which makes the withdrawal).
  class RpcController < ::ApplicationController
    requires_plugin PLUGIN_NAME

    before_action :ensure_logged_in

    SECOND_FACTOR_REQUIRED = "second_factor_required"

    def create
      RateLimiter.new(current_user, "fiber-link-rpc", SiteSetting.fiber_link_rpc_rate_per_minute, 1.minute).performed!

      payload =
        begin
          JSON.parse(request.raw_post)
        rescue JSON::ParserError
          nil
        end
      unless payload.is_a?(Hash)
        return render json: { error: { code: -32_700, reason: "parse_error", message: "bad request body" } }
      end

      method = payload["method"].to_s
      rpc_params = payload["params"] || {}
      if method == "withdrawal.request" && !FiberLink.confirm_session_available? &&
           !SiteSetting.fiber_link_allow_unconfirmed_withdrawals
        # no password to confirm and no second factor on this forum: refuse rather than let a
        # session cookie alone move money
        return(
          render json: {
                   error: {
                     code: -32_003,
                     reason: "withdrawals_unavailable",
                     message:
                       "this forum cannot confirm who you are (it signs in elsewhere), so withdrawals are off here",
                   },
                 }
        )
      end
      viewer = FiberLink.viewer_for(current_user, session_confirmed: session_confirmed?)
      if method == "withdrawal.request" && viewer.session_confirmed && rpc_params.is_a?(Hash)
        return request_withdrawal(rpc_params)
      end

      # everything else, and a withdrawal request from an unconfirmed session (which the proxy
      # refuses with confirm_session_required, calling nothing)
      render_proxy(FiberLink.proxy_for(guardian).call(viewer:, method:, params: rpc_params))
    end

    # The second-factor page's callback: it sends the challenge's nonce; the withdrawal's params
    # come from the challenge kept in the secure session, never from this request.
    def withdrawal_second_factor
      params.require(:second_factor_nonce)

      result =
        run_second_factor!(
          FiberLink::WithdrawalSecondFactor,
          action_data: {
            session_confirmed: session_confirmed?,
          },
        )
      status, body = result.data
      if body.is_a?(Hash) && body["result"]
        render json: body.merge(redirect_url: FiberLink::WithdrawalSecondFactor.tips_path(current_user))
      else
        error = body.is_a?(Hash) ? body["error"] : nil
        message = error.is_a?(Hash) ? error["message"].to_s : "the withdrawal was not made"
        render json: { errors: [message], error: }, status: status == 200 ? 422 : status
      end
    end

    private

    def request_withdrawal(rpc_params)
      RateLimiter.new(
        current_user,
        "fiber-link-withdrawal-request",
        SiteSetting.fiber_link_withdrawal_requests_per_hour,
        1.hour,
        apply_limit_to_staff: true,
      ).performed!

      rpc_params = rpc_params.dup
      # the same key makes a replayed or retried request the same withdrawal, never a second one
      rpc_params["idempotency_key"] = SecureRandom.hex(16) if rpc_params["idempotency_key"].blank?
      result =
        run_second_factor!(
          FiberLink::WithdrawalSecondFactor,
          action_data: {
            params: rpc_params,
            session_confirmed: true,
          },
        )
      render_proxy(result.data)
    rescue ::SecondFactor::AuthManager::SecondFactorRequired => e
      render json: {
               error: {
                 code: -32_003,
                 reason: SECOND_FACTOR_REQUIRED,
                 message: "confirm the withdrawal with your second factor",
                 second_factor_challenge_nonce: e.nonce,
               },
             }
    end

    # Whether this user confirmed their session (password or passkey) within the last hour.
    def session_confirmed?
      FiberLink.session_confirmed?(current_user, secure_session)
    end

    def render_proxy(answer)
      status, body = answer
      render json: body, status:
    end
  end
end
