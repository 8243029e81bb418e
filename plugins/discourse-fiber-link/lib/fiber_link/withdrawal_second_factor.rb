# frozen_string_literal: true

module FiberLink
  # withdrawal.request as a second-factor-protected action (core's SecondFactor::AuthManager,
  # through ApplicationController#run_second_factor!):
  #   * a user without a second factor: the withdrawal is made at once (no_second_factors_enabled!);
  #   * a user with one: the request's params are kept in the challenge (in the secure session),
  #     the client is sent to core's second-factor page, and once the factor is checked that page
  #     calls POST /fiber-link/withdrawals/second-factor, which makes the withdrawal from the kept
  #     params (second_factor_auth_completed!).
  # Either way the withdrawal goes through FiberLink::RpcProxy, which checks everything again,
  # including the confirmed session. Each returns the proxy's [status, body].
  class WithdrawalSecondFactor < ::SecondFactor::Actions::Base
    CALLBACK_PATH = "/fiber-link/withdrawals/second-factor"

    def self.tips_path(user)
      "#{Discourse.base_path}/u/#{user.encoded_username}/tips"
    end

    def no_second_factors_enabled!(_params)
      withdraw(@opts[:params])
    end

    def second_factor_auth_required!(_params)
      params = @opts[:params].to_h
      {
        callback_params: {
          params:,
        },
        callback_path: "#{Discourse.base_path}#{CALLBACK_PATH}",
        callback_method: "POST",
        redirect_url: self.class.tips_path(current_user),
        description:
          I18n.t(
            "fiber_link.second_factor.withdrawal",
            amount: params["amount"].to_s,
            asset: params["asset"].to_s,
            destination: self.class.short_destination(params["destination"]),
          ),
      }
    end

    # Where the money goes, shortened for the confirmation page ("ckt1qzda…x4c0cg", or a Fiber
    # invoice's start and end): the user must see it before confirming.
    def self.short_destination(dest)
      text = dest.is_a?(Hash) ? (dest["address"] || dest["invoice"]).to_s : ""
      text.length > 24 ? "#{text[0, 12]}…#{text[-10, 10]}" : text
    end

    def second_factor_auth_completed!(callback_params)
      withdraw(callback_params[:params] || callback_params["params"])
    end

    private

    def withdraw(params)
      viewer = FiberLink.viewer_for(current_user, session_confirmed: @opts[:session_confirmed] == true)
      FiberLink.proxy_for(guardian).call(viewer:, method: "withdrawal.request", params: plain(params))
    end

    # The params as plain Hashes with string keys (they come back from the challenge's JSON with
    # symbol keys, or as a HashWithIndifferentAccess).
    def plain(value)
      case value
      when Hash
        value.to_h.each_with_object({}) { |(k, v), out| out[k.to_s] = plain(v) }
      else
        value
      end
    end
  end
end
