package device

// MaxSessions is how many M2M sessions a Listener keeps.
const MaxSessions = maxSessions
