extension StoreTransaction {
    /// The tenant whose request made a Responses API response, from its usage row (once its journal was flushed).
    public func responseOwner(responseID: String) throws -> Int64? {
        try value("SELECT tenant_id FROM usage_requests WHERE response_id = ? LIMIT 1", responseID)
    }
}
