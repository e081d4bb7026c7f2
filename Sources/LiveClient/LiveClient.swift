// LiveClient
