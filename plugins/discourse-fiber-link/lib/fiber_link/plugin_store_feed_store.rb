# frozen_string_literal: true

module FiberLink
  # SettledFeedSync's store inside Discourse: the cursor and the ids notified from the page in
  # progress, in PluginStore; a notification and its id are written in one database transaction.
  class PluginStoreFeedStore
    KEY = "settled_feed"

    def cursor
      state["cursor"]
    end

    def page_done?(tip_id)
      state["done"].include?(tip_id)
    end

    def transaction(&block)
      ActiveRecord::Base.transaction(&block)
    end

    def mark_done(tip_id)
      save(state.merge("done" => state["done"] + [tip_id]))
    end

    def advance(next_cursor)
      save({ "cursor" => next_cursor, "done" => [] })
    end

    private

    def state
      @state ||=
        begin
          stored = PluginStore.get(PLUGIN_NAME, KEY)
          if stored.is_a?(Hash)
            { "cursor" => stored["cursor"], "done" => Array(stored["done"]) }
          else
            { "cursor" => nil, "done" => [] }
          end
        end
    end

    def save(new_state)
      PluginStore.set(PLUGIN_NAME, KEY, new_state)
      @state = new_state
    end
  end
end
