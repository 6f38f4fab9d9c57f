package budget

// MemoryStore keeps the counters in this process (standalone gateway, no Redis).
type MemoryStore struct{}

// NewMemoryStore returns an empty in-process store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (*MemoryStore) Close() error { return nil }
func (*MemoryStore) store()       {}

// RedisStore keeps the counters in Redis, shared by every pod.
type RedisStore struct{}

// NewRedisStore connects to the Redis at url (redis://[:password@]host:port[/db], rediss://).
func NewRedisStore(url string) (*RedisStore, error) { return &RedisStore{}, errTODO }

func (*RedisStore) Close() error { return nil }
func (*RedisStore) store()       {}
