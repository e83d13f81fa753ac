package main

// routingCommands are the ctl commands for routing: sessions, prefixes, drain, restore (the routing issue).
func routingCommands() map[string]ctlCommand { return nil }
