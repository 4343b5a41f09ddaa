import ArgumentParser

// The root command parses nginx's own flags; subcommands add the app server.
GantryCommand.main()
