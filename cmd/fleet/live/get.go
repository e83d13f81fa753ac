package live

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// getJSON reads an endpoint the API client has no method for.
func getJSON(c *api.Client, path string, out any) error {
	resp, err := c.HTTP.Get(c.Base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
