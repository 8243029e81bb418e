# frozen_string_literal: true

module FiberLink
  # What each post has received (settled tips per asset), for the posts of a topic page: one
  # service call (post.totals) for every post not in the cache, none when all are. Pure Ruby: the
  # client and the cache are injected (Discourse gives Rails.cache; the tests a Hash).
  #
  # A failing service never breaks or slows a topic page: posts whose totals could not be read
  # are left out (no totals shown), and after a failure no call is made for BACKOFF seconds (the
  # mark is in the shared cache, so every app server backs off together); give it a client with
  # short timeouts.
  class PostTotals
    # How long a post's totals are kept. The settled-tips job drops a post's entry as soon as it
    # sees a new settlement on it, so this bounds staleness only when that job is behind.
    TTL = 300
    # The service's limit per call.
    BATCH = 200
    # After a failed call, how long every topic page goes without asking.
    BACKOFF = 30
    DOWN_KEY = "fiber_link_post_totals:down"

    # cache must respond to read_multi(*keys) -> { key => value }, write(key, value, expires_in:)
    # and delete(key) (the Rails.cache API).
    def initialize(client:, cache:, logger: nil, ttl: TTL)
      @client = client
      @cache = cache
      @logger = logger
      @ttl = ttl
    end

    # { post_id (as given) => [{ "asset", "decimals", "amount", "tips" }, ...] } for the posts
    # whose totals are known; a post with no settled tip maps to [].
    def for_posts(post_ids)
      ids = post_ids.uniq
      return {} if ids.empty?

      keys = ids.to_h { |id| [id, key(id)] }
      cached = @cache.read_multi(*keys.values)
      out = {}
      missing = []
      ids.each do |id|
        if cached.key?(keys[id])
          out[id] = cached[keys[id]]
        else
          missing << id
        end
      end
      return out if missing.empty? || @cache.read_multi(DOWN_KEY).key?(DOWN_KEY)

      missing.each_slice(BATCH) do |slice|
        answer = @client.call("post.totals", { "post_ids" => slice.map(&:to_s) })
        by_id = Array(answer.fetch("totals")).to_h { |t| [t.fetch("post_id").to_s, Array(t["assets"])] }
        slice.each do |id|
          assets = by_id[id.to_s]
          next if assets.nil?

          out[id] = assets
          @cache.write(keys[id], assets, expires_in: @ttl)
        end
      end
      out
    rescue Client::Error, KeyError, TypeError, NoMethodError => e
      # a failing service, or an answer not shaped as post.totals: no totals, never a broken page
      why = e.is_a?(Client::Error) ? "#{e.reason} (#{e.code})" : "unexpected answer (#{e.class})"
      @logger&.warn("[fiber-link] post totals: #{why}; not asked again for #{BACKOFF} s")
      @cache.write(DOWN_KEY, true, expires_in: BACKOFF)
      out || {}
    end

    # Forget these posts' totals (a tip on them settled).
    def invalidate(post_ids)
      post_ids.uniq.each { |id| @cache.delete(key(id)) }
    end

    def key(post_id) = "fiber_link_post_totals:#{post_id}"

    # A cache in memory, for tests and plain Ruby.
    class MemoryCache
      def initialize
        @h = {}
      end

      def read_multi(*keys) = keys.each_with_object({}) { |k, o| o[k] = @h[k] if @h.key?(k) }

      def write(key, value, expires_in: nil) # rubocop:disable Lint/UnusedMethodArgument
        @h[key] = value
      end

      def delete(key)
        @h.delete(key)
      end
    end
  end
end
