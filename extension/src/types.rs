//! SQL types the pgrx layer needs that pgrx does not map: `regclass` and `name` arguments.

use crate::errors::require;
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::prelude::*;
use std::ffi::CStr;

/// A type as SQL spells it (`bigint`, `timestamp with time zone`).
pub fn type_name(typid: pg_sys::Oid) -> String {
    unsafe {
        let s = pg_sys::format_type_be(typid);
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

/// A NULL where a function takes no NULL (it is STRICT, so PostgreSQL never passes one): raised
/// as null_value_not_allowed rather than a panic.
fn non_null<T>(value: Option<T>, index: usize) -> T {
    require(value, &format!("argument {}", index + 1))
}

/// A `regclass` argument (a relation OID that PostgreSQL resolved from a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegClass(pub pg_sys::Oid);

impl FromDatum for RegClass {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        (!is_null).then(|| RegClass(pg_sys::Oid::from(datum.value() as u32)))
    }
}

impl IntoDatum for RegClass {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(pg_sys::Datum::from(self.0.to_u32()))
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::REGCLASSOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for RegClass {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        non_null(unsafe { arg.unbox_arg_using_from_datum() }, index)
    }
}

// Returned as a column of `rowsec.my_shares()`.
unsafe impl BoxRet for RegClass {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(pg_sys::Datum::from(self.0.to_u32())) }
    }
}

pgrx::impl_sql_translatable!(RegClass, "regclass");

/// A `name` argument (a column name in the configuration functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlName(pub String);

impl FromDatum for SqlName {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // SAFETY: a `name` datum points at a NUL-terminated NameData.
        let s = unsafe { CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>()) };
        Some(SqlName(s.to_string_lossy().into_owned()))
    }
}

impl IntoDatum for SqlName {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // NameData: NAMEDATALEN zero-padded bytes, truncated like PostgreSQL does (at a char boundary).
        let len = pg_sys::NAMEDATALEN as usize;
        let mut end = self.0.len().min(len - 1);
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        unsafe {
            let p = pg_sys::palloc0(len).cast::<u8>();
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, end);
            Some(pg_sys::Datum::from(p))
        }
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::NAMEOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for SqlName {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        non_null(unsafe { arg.unbox_arg_using_from_datum() }, index)
    }
}

pgrx::impl_sql_translatable!(SqlName, "name");
