// BrokerEngine
