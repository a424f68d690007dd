"""The service runtime every quakestack process shares: server bootstrap, interceptors, health."""
