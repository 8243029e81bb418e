# frozen_string_literal: true

require "json"
require "net/http"
require "openssl"
require "securerandom"
require "uri"

module FiberLink
  # A signed JSON-RPC client for the Fiber Link service (docs/api.md).
  #
  # Pure Ruby (stdlib only): everything it needs comes through the constructor, so the same class
  # runs inside Discourse (built from site settings by FiberLink.client) and in plain minitest
  # against a real service.
  class Client
    DEFAULT_OPEN_TIMEOUT = 3
    DEFAULT_READ_TIMEOUT = 10
    MAX_BODY_BYTES = 64 * 1024

    # Any failure of a call. `reason` is a stable machine-readable string.
    class Error < StandardError
      attr_reader :code, :reason

      def initialize(message, code:, reason:)
        super(message)
        @code = code
        @reason = reason
      end
    end

    # The service answered with a JSON-RPC error (including authentication failures).
    class RpcError < Error
      attr_reader :data, :http_status

      def initialize(message, code:, reason:, data: nil, http_status: nil)
        super(message, code:, reason:)
        @data = data
        @http_status = http_status
      end
    end

    # The service could not be reached, did not answer in time, or answered with something that
    # is not a JSON-RPC response.
    class TransportError < Error
      def initialize(message, reason: "service_unavailable")
        super(message, code: nil, reason:)
      end
    end

    # A request ready to send: the exact body bytes and the headers that sign them.
    Request = Struct.new(:body, :headers, keyword_init: true)

    # A raw answer, for callers (and tests) that want the HTTP status and body as received.
    Response = Struct.new(:status, :body, keyword_init: true) do
      def json
        JSON.parse(body)
      rescue JSON::ParserError
        nil
      end
    end

    attr_reader :base_url, :app_id

    def self.signature(secret, ts, nonce, body)
      OpenSSL::HMAC.hexdigest("SHA256", secret.to_s.b, "#{ts}.#{nonce}.".b + body.to_s.b)
    end

    def initialize(
      base_url:,
      app_id:,
      secret:,
      open_timeout: DEFAULT_OPEN_TIMEOUT,
      read_timeout: DEFAULT_READ_TIMEOUT,
      clock: -> { Time.now.to_i },
      nonce: -> { SecureRandom.hex(16) }
    )
      raise ArgumentError, "base_url is required" if base_url.to_s.strip.empty?
      raise ArgumentError, "app_id is required" if app_id.to_s.strip.empty?
      raise ArgumentError, "secret is required" if secret.to_s.empty?

      @base_url = base_url.to_s.chomp("/")
      @rpc_uri = URI.parse("#{@base_url}/rpc")
      unless @rpc_uri.is_a?(URI::HTTP) && @rpc_uri.host
        raise ArgumentError, "base_url must be an http(s) URL"
      end

      @app_id = app_id.to_s
      @secret = secret.to_s
      @open_timeout = open_timeout
      @read_timeout = read_timeout
      @clock = clock
      @nonce = nonce
      @next_id = 0
      @id_lock = Mutex.new
    end

    # Never show the secret, not even in an exception report or a console.
    def inspect
      "#<#{self.class.name} #{@base_url} app_id=#{@app_id} secret=[FILTERED]>"
    end
    alias to_s inspect

    # Calls a method and returns its result, or raises RpcError / TransportError.
    def call(method, params = {})
      response = send_request(build_request(method, params))
      parse_response(response)
    end

    # The body and signed headers of a call, without sending it.
    def build_request(method, params = {})
      body = JSON.generate({ jsonrpc: "2.0", id: next_id, method: method.to_s, params: params || {} })
      if body.bytesize > MAX_BODY_BYTES
        raise RpcError.new(
                "the request is larger than the service accepts",
                code: -32_004,
                reason: "body_too_large",
              )
      end
      Request.new(body:, headers: sign(body))
    end

    # The four authentication headers for these exact body bytes.
    def sign(body, ts: @clock.call, nonce: @nonce.call)
      {
        "x-app-id" => @app_id,
        "x-ts" => ts.to_s,
        "x-nonce" => nonce.to_s,
        "x-signature" => self.class.signature(@secret, ts, nonce, body),
      }
    end

    # Sends a prepared request as is (the tests use it to replay or tamper with one).
    def send_request(request)
      http = Net::HTTP.new(@rpc_uri.host, @rpc_uri.port)
      http.use_ssl = @rpc_uri.scheme == "https"
      http.open_timeout = @open_timeout
      http.read_timeout = @read_timeout
      http.write_timeout = @read_timeout if http.respond_to?(:write_timeout=)
      post = Net::HTTP::Post.new(@rpc_uri.request_uri)
      post["content-type"] = "application/json"
      post["accept"] = "application/json"
      request.headers.each { |k, v| post[k] = v }
      post.body = request.body
      res = http.request(post)
      Response.new(status: res.code.to_i, body: res.body.to_s)
    rescue Net::OpenTimeout, Net::ReadTimeout, Net::WriteTimeout => e
      raise TransportError.new("the Fiber Link service did not answer in time (#{e.class.name})",
                               reason: "service_timeout")
    rescue SystemCallError, SocketError, IOError, OpenSSL::SSL::SSLError => e
      raise TransportError, "the Fiber Link service could not be reached (#{e.class.name})"
    end

    def parse_response(response)
      json = response.json
      unless json.is_a?(Hash) && (json.key?("result") || json.key?("error"))
        raise TransportError, "the Fiber Link service answered HTTP #{response.status} without a JSON-RPC body"
      end

      if (err = json["error"])
        data = err["data"].is_a?(Hash) ? err["data"] : {}
        raise RpcError.new(
                err["message"].to_s,
                code: err["code"],
                reason: data["reason"] || "unknown",
                data:,
                http_status: response.status,
              )
      end
      json["result"]
    end

    private

    def next_id
      @id_lock.synchronize { @next_id += 1 }
    end
  end
end
