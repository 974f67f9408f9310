package okx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/insforge/integrations-operator/internal/facilitator/httpcall"
	"github.com/insforge/integrations-operator/internal/x402"
)

// Envelope is OKX's response wrapper {"code": "0", "msg": "", "data": ...}, decoded tolerantly:
// code may be a string or a number, data an object or a one-element array (legacy API), and a
// body without "code" is taken as un-enveloped data.
type Envelope struct {
	Code string
	Msg  string
	Data json.RawMessage // the object (first element of an array); nil when absent or null
}

// OK reports whether the envelope carries success (code "0").
func (e Envelope) OK() bool { return e.Code == "0" }

// MaxResponseBytes bounds the size of a response body read from OKX.
const MaxResponseBytes = httpcall.MaxResponseBytes

// DecodeEnvelope decodes an OKX response body.
func DecodeEnvelope(body []byte) (Envelope, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return Envelope{}, fmt.Errorf("okx response is not a JSON object: %w", err)
	}
	rawCode, enveloped := fields["code"]
	if !enveloped {
		return Envelope{Code: "0", Data: json.RawMessage(body)}, nil
	}
	code, err := decodeCode(rawCode)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{Code: code}
	if m, ok := fields["msg"]; ok && string(m) != "null" {
		if err := json.Unmarshal(m, &env.Msg); err != nil {
			return Envelope{}, fmt.Errorf("okx response msg is not a string: %w", err)
		}
	}
	data := bytes.TrimSpace(fields["data"])
	switch {
	case len(data) == 0 || string(data) == "null":
	case data[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return Envelope{}, fmt.Errorf("okx response data array: %w", err)
		}
		if len(items) > 0 && string(items[0]) != "null" {
			env.Data = items[0]
		}
	case data[0] == '{':
		env.Data = data
	default:
		return Envelope{}, errors.New("okx response data is neither an object nor an array")
	}
	return env, nil
}

func decodeCode(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err == nil {
		if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return strconv.FormatInt(i, 10), nil
		}
	}
	return "", errors.New("okx response code is neither a string nor an integer")
}

// settleData is the settle / settle-status data object. Legacy (v1) responses name the hash
// txHash instead of transaction.
type settleData struct {
	x402.SettleResponse
	TxHash string `json:"txHash"`
}

// DecodeVerifyData decodes verify data; isValid is required.
func DecodeVerifyData(data json.RawMessage) (x402.VerifyResponse, error) {
	var v x402.VerifyResponse
	if err := x402.DecodeObject(data, "okx verify data", &v, "isValid"); err != nil {
		return x402.VerifyResponse{}, err
	}
	return v, nil
}

// DecodeSettleData decodes settle or settle-status data; success is required.
func DecodeSettleData(data json.RawMessage) (x402.SettleResponse, error) {
	var d settleData
	if err := x402.DecodeObject(data, "okx settle data", &d, "success"); err != nil {
		return x402.SettleResponse{}, err
	}
	if d.Transaction == "" {
		d.Transaction = d.TxHash
	}
	return d.SettleResponse, nil
}
