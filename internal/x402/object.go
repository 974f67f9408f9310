package x402

import (
	"encoding/json"
	"fmt"
)

// DecodeObject decodes a facilitator's JSON object (what names it in errors) into v, after
// checking that every required key is present: a zero value for a missing isValid or success
// would read as a verdict nobody gave.
func DecodeObject(data []byte, what string, v any, required ...string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("%s is not a JSON object: %w", what, err)
	}
	for _, k := range required {
		if _, ok := fields[k]; !ok {
			return fmt.Errorf("%s lacks %s", what, k)
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
