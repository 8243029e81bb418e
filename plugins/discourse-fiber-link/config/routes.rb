# frozen_string_literal: true

FiberLink::Engine.routes.draw do
  get "/" => "dashboard#index"
  post "/rpc" => "rpc#create"
  # the callback core's second-factor page calls once a withdrawal's second factor is checked
  post "/withdrawals/second-factor" => "rpc#withdrawal_second_factor"
end

Discourse::Application.routes.draw do
  mount ::FiberLink::Engine, at: "/fiber-link"
  # The author's dashboard is a tab of their user page: a full page load of it gets the Ember app
  # (users#show renders the shell, as for every user page; discourse-subscriptions does the same
  # for /u/:username/billing). The data behind it is always the logged-in user's own.
  get "/u/:username/tips" => "users#show", :constraints => { username: RouteFormat.username }
end
