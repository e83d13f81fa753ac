package main

// systemCommands are the ctl commands for system: logs, reboot, poweroff (the boot issue).
func systemCommands() map[string]ctlCommand { return nil }
