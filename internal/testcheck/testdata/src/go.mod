module example.com/tc

go 1.26
