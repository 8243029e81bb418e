# frozen_string_literal: true

module FiberLink
  # The policy of POST /fiber-link/rpc, free of Rails and Discourse so it runs in plain Ruby.
  #
  # The browser names a method and some params; this class decides what actually reaches the
  # service:
  #   * only the methods in METHODS are forwarded, each with only the params it lists;
  #   * every identity is derived here: the payer is the viewer, the recipient is the author of
  #     the post as the viewer can see it, and every user_id is the viewer's own;
  #   * objects read back (a tip, a withdrawal) are shown only to the users they belong to;
  #   * it fails closed: a post the forum's tipping rule refuses (FiberLink::TipPolicy, through
  #     the post lookup), a malformed amount, a message over the service's limit, and a
  #     withdrawal request from a session that was not confirmed are refused here, before the
  #     service is called.
  #
  # #call returns [http_status, body]. Service and policy errors are HTTP 200 with
  # {"error" => {"code", "reason", "message"}} so that the browser reads them in one place;
  # only "you may not use this at all" answers use an HTTP error status.
  class RpcProxy
    # The logged-in user. session_confirmed: they confirmed who they are (password or passkey)
    # recently; withdrawal.request is refused without it.
    Viewer = Struct.new(:id, :admin, :session_confirmed, keyword_init: true)
    # What the post lookup returns: the post and, when the viewer may not tip it, why (a
    # FiberLink::TipPolicy::REFUSALS key). nil when there is no such post.
    PostRef = Struct.new(:id, :author_id, :refusal, keyword_init: true)

    AMOUNT_FORMAT = /\A(?:0|[1-9][0-9]*)(?:\.[0-9]+)?\z/
    # Longer amounts are refused without parsing them (the service's own limit is far below).
    MAX_AMOUNT_CHARS = 64
    # tip.create's message: at most 280 characters (Unicode scalar values), docs/api.md.
    MAX_MESSAGE_CHARS = 280
    KEY_FORMAT = /\A[A-Za-z0-9_-]{8,64}\z/
    ID_FORMAT = /\A[A-Za-z0-9_-]{1,128}\z/
    MAX_PAGE = 50

    METHODS = {
      "tip.create" => :tip_create,
      "tip.get" => :tip_get,
      "balance.get" => :balance_get,
      "dashboard.summary" => :dashboard_summary,
      "tip.list" => :tip_list,
      "withdrawal.quote" => :withdrawal_quote,
      "withdrawal.request" => :withdrawal_request,
      "withdrawal.get" => :withdrawal_get,
      "withdrawal.list" => :withdrawal_list,
      "withdrawal.cancel" => :withdrawal_cancel,
    }.freeze

    # A refusal decided here, before or instead of calling the service.
    class Refusal < StandardError
      attr_reader :code, :reason

      def initialize(code, reason, message)
        super(message)
        @code = code
        @reason = reason
      end
    end

    # client:       a FiberLink::Client (or anything with #call(method, params))
    # post_lookup:  ->(post_id, viewer) { PostRef or nil }; PostRef#refusal says why the forum's
    #               tipping rule (Guardian#can_tip_post?, FiberLink::TipPolicy) refuses the viewer
    # enabled:      ->() { true/false }, the plugin's enabled setting
    # tip_limits:   ->() { { min: "0.1", max: "1000" } } in asset units (strings), from settings
    # user_lookup:  ->([user ids]) { { "id" => "username" } }, to name people in tip lists
    # qr:           ->(text) { "data:image/svg+xml;base64,..." }, the invoice's QR code
    # logger:       anything with #warn; never receives the app secret
    def initialize(
      client:,
      post_lookup:,
      enabled: -> { true },
      tip_limits: -> { {} },
      user_lookup: nil,
      qr: nil,
      logger: nil
    )
      @client = client
      @post_lookup = post_lookup
      @enabled = enabled
      @tip_limits = tip_limits
      @user_lookup = user_lookup
      @qr = qr
      @logger = logger
    end

    def call(viewer:, method:, params:)
      return error(404, -32_000, "plugin_disabled", "tipping is turned off on this forum") unless @enabled.call
      return error(403, -32_001, "not_logged_in", "log in to use tipping") if viewer.nil? || blank?(viewer.id)

      handler = METHODS[method.to_s]
      return error(200, -32_601, "method_not_allowed", "this method is not available to the forum") unless handler
      return error(200, -32_602, "params_not_object", "params must be an object") unless params.is_a?(Hash)

      result = send(handler, viewer, stringify(params))
      [200, { "result" => result }]
    rescue Refusal => e
      error(200, e.code, e.reason, e.message)
    rescue FiberLink::Client::RpcError => e
      log_service_error(method, e) if e.code.to_i == -32_001 || e.code.to_i == -32_603
      error(200, e.code, e.reason, e.message)
    rescue FiberLink::Client::TransportError => e
      @logger&.warn("[fiber-link] #{method}: #{e.message}")
      error(200, -32_603, e.reason, "the tipping service is not reachable right now")
    end

    private

    # --- tips -------------------------------------------------------------------------------

    def tip_create(viewer, params)
      post = tip_post(viewer, params["post_id"])
      amount = amount!(params["amount"])
      check_tip_limits(amount)
      message = tip_message!(params["message"])
      out = {
        "post_id" => post.id.to_s,
        "from_user_id" => viewer.id.to_s,
        "to_user_id" => post.author_id.to_s,
        "asset" => params["asset"].to_s,
        "amount" => amount,
      }
      out["message"] = message unless message.nil?
      out["idempotency_key"] = scoped_key(viewer, params["idempotency_key"]) unless blank?(params["idempotency_key"])
      tip = @client.call("tip.create", out)
      tip["qr_data_url"] = @qr.call(tip["invoice"]) if @qr && tip.is_a?(Hash) && tip["invoice"]
      tip
    end

    # The post to tip, as the forum's rule allows it to this viewer.
    def tip_post(viewer, post_id)
      post = @post_lookup.call(post_id, viewer) unless blank?(post_id)
      raise refusal(:post_missing) unless post
      raise refusal(post.refusal) unless post.refusal.nil?
      raise refusal(:author_missing) if blank?(post.author_id)
      raise refusal(:own_post) if post.author_id.to_s == viewer.id.to_s

      post
    end

    # A tip message: absent or empty for none; otherwise text of at most MAX_MESSAGE_CHARS.
    def tip_message!(message)
      return nil if message.nil? || message == ""
      unless message.is_a?(String) && message.valid_encoding?
        raise Refusal.new(-32_602, "message_malformed", "the message must be text")
      end
      if message.length > MAX_MESSAGE_CHARS
        raise Refusal.new(-32_602, "message_too_long", "the message can be at most #{MAX_MESSAGE_CHARS} characters")
      end

      message
    end

    def tip_get(viewer, params)
      tip_id = required_id(params, "tip_id")
      tip = @client.call("tip.get", { "tip_id" => tip_id })
      unless party?(viewer, tip["from_user_id"], tip["to_user_id"])
        raise Refusal.new(-32_002, "tip_not_found", "no such tip")
      end

      %w[invoice pay_url qr_data_url].each { |k| tip.delete(k) } unless tip["from_user_id"].to_s == viewer.id.to_s
      tip
    end

    def balance_get(viewer, _params)
      @client.call("balance.get", { "user_id" => viewer.id.to_s })
    end

    def dashboard_summary(viewer, _params)
      summary = @client.call("dashboard.summary", { "user_id" => viewer.id.to_s })
      with_users(summary, (summary["latest_received"] || []) + (summary["latest_sent"] || []))
    end

    def tip_list(viewer, params)
      direction = params["direction"].to_s
      unless %w[received sent].include?(direction)
        raise Refusal.new(-32_602, "invalid_params", "direction must be received or sent")
      end

      out = { "user_id" => viewer.id.to_s, "direction" => direction, "limit" => page_limit(params["limit"]) }
      out["cursor"] = params["cursor"].to_s unless blank?(params["cursor"])
      out["state"] = params["state"].to_s unless blank?(params["state"])
      page = @client.call("tip.list", out)
      with_users(page, page["tips"] || [])
    end

    # A positive plain decimal such as "2.5" (no sign, exponent, spaces or leading zeros), as a
    # string; anything else is refused here. How many decimals an asset allows is the service's
    # to check.
    def amount!(amount)
      valid = amount.is_a?(String) && amount.length <= MAX_AMOUNT_CHARS && AMOUNT_FORMAT.match?(amount) &&
              Rational(amount).positive?
      raise Refusal.new(-32_602, "amount_invalid", "enter the amount as a plain number, like 5 or 2.5") unless valid

      amount
    end

    def check_tip_limits(amount)
      limits = @tip_limits.call || {}
      min = decimal(limits[:min])
      max = decimal(limits[:max])
      value = Rational(amount)
      if min && value < min
        raise Refusal.new(-32_602, "tip_below_minimum", "the smallest tip on this forum is #{limits[:min]}")
      end
      return unless max && value > max

      raise Refusal.new(-32_602, "tip_above_maximum", "the largest tip on this forum is #{limits[:max]}")
    end

    # --- withdrawals --------------------------------------------------------------------------

    def withdrawal_quote(viewer, params)
      out = withdrawal_params(viewer, params)
      # without an amount, the quote is for the most the viewer may withdraw
      if blank?(params["amount"])
        out.delete("amount")
      else
        out["amount"] = amount!(params["amount"])
      end
      @client.call("withdrawal.quote", out)
    end

    # Money leaves: only from a session whose user confirmed who they are (the controller also
    # asks for their second factor, when they have one).
    def withdrawal_request(viewer, params)
      unless viewer.session_confirmed == true
        raise Refusal.new(-32_003, "confirm_session_required", "confirm your password (or second factor) to withdraw")
      end

      out = withdrawal_params(viewer, params)
      out["amount"] = amount!(params["amount"])
      out["idempotency_key"] = scoped_key(viewer, params["idempotency_key"]) unless blank?(params["idempotency_key"])
      @client.call("withdrawal.request", out)
    end

    def withdrawal_get(viewer, params)
      own_withdrawal(viewer, required_id(params, "withdrawal_id"))
    end

    def withdrawal_cancel(viewer, params)
      id = own_withdrawal(viewer, required_id(params, "withdrawal_id"))["withdrawal_id"]
      @client.call("withdrawal.cancel", { "withdrawal_id" => id })
    end

    def withdrawal_list(viewer, params)
      out = { "user_id" => viewer.id.to_s, "limit" => page_limit(params["limit"]) }
      out["cursor"] = params["cursor"].to_s unless blank?(params["cursor"])
      @client.call("withdrawal.list", out)
    end

    def withdrawal_params(viewer, params)
      dest = params["destination"]
      destination =
        if dest.is_a?(Hash) && dest["kind"] == "ckb_address"
          { "kind" => "ckb_address", "address" => dest["address"].to_s.strip }
        elsif dest.is_a?(Hash) && dest["kind"] == "fiber_invoice"
          { "kind" => "fiber_invoice", "invoice" => dest["invoice"].to_s.strip }
        else
          raise Refusal.new(-32_602, "destination_malformed", "choose a CKB address or a Fiber invoice")
        end
      {
        "user_id" => viewer.id.to_s,
        "asset" => params["asset"].to_s,
        "amount" => params["amount"],
        "destination" => destination,
      }
    end

    def own_withdrawal(viewer, id)
      withdrawal = @client.call("withdrawal.get", { "withdrawal_id" => id })
      unless withdrawal["user_id"].to_s == viewer.id.to_s
        raise Refusal.new(-32_002, "withdrawal_not_found", "no such withdrawal")
      end

      withdrawal
    end

    # --- helpers ------------------------------------------------------------------------------

    def refusal(key)
      code, reason, message = TipPolicy.error_for(key)
      Refusal.new(code, reason, message)
    end

    def party?(viewer, *user_ids)
      viewer.admin || user_ids.any? { |u| !u.nil? && u.to_s == viewer.id.to_s }
    end

    # Idempotency keys are the viewer's own: two users cannot collide or read each other's.
    def scoped_key(viewer, key)
      key = key.to_s
      raise Refusal.new(-32_602, "invalid_params", "malformed idempotency key") unless KEY_FORMAT.match?(key)

      "discourse:#{viewer.id}:#{key}"
    end

    def required_id(params, name)
      value = params[name].to_s
      raise Refusal.new(-32_602, "invalid_params", "#{name} is required") unless ID_FORMAT.match?(value)

      value
    end

    def page_limit(value)
      n = Integer(value.to_s, exception: false) || 20
      n.clamp(1, MAX_PAGE)
    end

    def with_users(result, tips)
      return result unless @user_lookup && result.is_a?(Hash)

      ids = tips.flat_map { |t| [t["from_user_id"], t["to_user_id"]] }.compact.map(&:to_s).uniq
      result["users"] = ids.empty? ? {} : @user_lookup.call(ids)
      result
    end

    def decimal(value)
      value = value.to_s.strip
      AMOUNT_FORMAT.match?(value) ? Rational(value) : nil
    end

    def stringify(hash)
      hash.each_with_object({}) { |(k, v), out| out[k.to_s] = v.is_a?(Hash) ? stringify(v) : v }
    end

    def blank?(value)
      value.nil? || value.to_s.strip.empty?
    end

    def error(status, code, reason, message)
      [status, { "error" => { "code" => code, "reason" => reason, "message" => message } }]
    end

    def log_service_error(method, err)
      @logger&.warn("[fiber-link] #{method}: the service refused the forum (#{err.code} #{err.reason})")
    end
  end
end
