package adapters

import "github.com/tidwall/gjson"

func gjsonString(b []byte, path string) string { return gjson.GetBytes(b, path).String() }
