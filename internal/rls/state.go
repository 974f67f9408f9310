package rls

// State is what Observe found in the database for one Spec. Diff compares it with the Spec.
type State struct {
	// MissingRoles lists the API roles (anon, authenticated) that do not exist.
	MissingRoles []string
	// Helper is public.requesting_user_id(), nil when absent.
	Helper *HelperState
	// Schemas holds every schema the spec's tables live in.
	Schemas map[string]SchemaState
	// Tables holds every table of the spec.
	Tables map[TableRef]*TableState
	// Owned lists the policies anywhere in the database whose comment marks them as this owner's.
	Owned []OwnedPolicy
	// BetterAuth is filled for the Better Auth provider.
	BetterAuth *BetterAuthState
}

// HelperState describes public.requesting_user_id().
type HelperState struct {
	Body                    string
	ReturnType              string
	Language                string
	Volatility              string
	AuthenticatedCanExecute bool
}

// SchemaState describes a schema holding managed tables.
type SchemaState struct {
	Exists             bool
	AuthenticatedUsage bool
}

// TableState describes one managed table.
type TableState struct {
	Exists     bool
	RLSEnabled bool
	// Column is the user id column, nil when absent.
	Column *ColumnState
	// Indexed is true when a valid, non-partial index starts with the user id column.
	Indexed bool
	// Policies are all policies on the table, whoever wrote them.
	Policies []PolicyState
	// Privileges says which commands authenticated may run on the table.
	Privileges map[Command]bool
}

// ColumnState describes the user id column.
type ColumnState struct {
	// Type is format_type() of the column, e.g. "text" or "uuid".
	Type string
	// Default is the deparsed default expression, empty when none.
	Default string
	// ForeignKeys are the constraints that include the column, as "name -> referenced table".
	ForeignKeys []string
}

// PolicyState is one row of pg_policy, deparsed.
type PolicyState struct {
	Name       string
	Command    Command // empty for FOR ALL
	Permissive bool
	Roles      []string
	Using      string
	Check      string
	// Owner is the owner named in the policy's comment, empty when the comment is not ours.
	Owner string
}

// OwnedPolicy is a policy whose comment names this integration's owner.
type OwnedPolicy struct {
	Table TableRef
	Name  string
}

// BetterAuthState describes the better_auth schema.
type BetterAuthState struct {
	Exists bool
	// SchemaGrants are privileges anon/authenticated hold on the schema, e.g. "anon USAGE".
	SchemaGrants []string
	// ObjectGrants are privileges anon/authenticated hold on relations in the schema.
	ObjectGrants []string
}
