# frozen_string_literal: true

FiberLink::Engine.routes.draw do
  get "/" => "dashboard#index"
  post "/rpc" => "rpc#create"
end

Discourse::Application.routes.draw { mount ::FiberLink::Engine, at: "/fiber-link" }
